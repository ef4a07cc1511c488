"""The PDFs of the fixture sites (tests/guidelines_scraper/fixtures/sites/), as markup for
:mod:`tests.guidelines_scraper.pdfwriter`. All content is invented. The committed PDFs are exactly
what this module renders (a test checks it); after editing, regenerate them with

    python -m tests.guidelines_scraper.fixture_pdfs
"""

from __future__ import annotations

from pathlib import Path

from .pdfwriter import write_pdf

SITES = Path(__file__).parent / "fixtures" / "sites"

FIXTURE_PDFS: dict[str, dict] = {}  # path under sites/ (a "%3F" for a query, as the server maps it) -> spec

CCO_HEADER = "Evidence-Based Series {code}   Program in Evidence-Based Care (fixture)"


def _cco(code: str, title: str, body: str) -> dict:
    front = f"""
= {title}
Evidence-Based Series {code}

A Quality Initiative of the Program in Evidence-Based Care (PEBC), a fixture copy of an Ontario Health (Cancer Care Ontario) report.

Report Date: March 4, 2024

This report is copyrighted by Ontario Health (Cancer Care Ontario); the report and the illustrations herein may not be reproduced without the express written permission of Ontario Health.
<<page>>
"""
    return {"markup": front + body, "header": CCO_HEADER.format(code=code), "footer": "Page {page} of {pages}"}


FIXTURE_PDFS["www.cancercareontario.ca/sites/ccocancercare/files/guidelines/full/pebc26-2f.pdf"] = _cco(
    "26-2", "Follow-up Care for Survivors of Colorectal Cancer", """
# Guideline Objectives
To recommend the type, frequency and duration of follow-up care for adults who have completed curative treatment for stage II or III colorectal cancer.
# Target Population
Adults who have completed surgery, with or without adjuvant chemotherapy, for colorectal cancer and who have no evidence of residual disease.
# Recommendations
- Follow-up should be coordinated by one clinician, who may be a family physician, and the plan should be shared with the patient in writing.
- A history, physical examination and carcinoembryonic antigen test should be done every six months for three years, then yearly until five years.
- A computed tomography scan of the chest, abdomen and pelvis should be done every twelve months for three years.
- Colonoscopy should be done one year after surgery and then every five years if no adenomas are found.
o Patients with adenomas should have colonoscopy at intervals based on the findings.
## Qualifying Statements
More intensive follow-up did not improve overall survival in the trials reviewed, although it detected recurrences earlier and allowed more of them to be treated with curative intent. Routine positron emission tomography is not recommended.

Endorsement statement: this fixture guideline is endorsed by no one.
<<page>>
# Implementation Considerations
Patients should be told which symptoms, such as rectal bleeding, a change in bowel habit, weight loss or abdominal pain, should prompt an earlier visit. Survivorship care should also address the late effects of treatment, including neuropathy after oxaliplatin and bowel dysfunction after rectal surgery.
# Acknowledgements
The Working Group thanks the reviewers of this fixture report.
""")

FIXTURE_PDFS["www.cancercareontario.ca/sites/ccocancercare/files/guidelines/summary/pebc26-2s.pdf"] = {
    "markup": """
= Follow-up Care for Survivors of Colorectal Cancer: Summary
This is a quick reference guide to Evidence-Based Series 26-2.
# Questions
What follow-up should survivors receive?
""", "footer": "Summary"}

FIXTURE_PDFS["www.cancercareontario.ca/sites/ccocancercare/files/guidelines/full/pebc-fatigue.pdf"] = _cco(
    "19-5", "Management of Cancer-Related Fatigue in Adults", """
# Questions
1. Which screening tools identify cancer-related fatigue in adults with cancer?

2. Which interventions reduce fatigue during and after cancer treatment?
# Introduction
Fatigue is one of the most common and distressing symptoms reported by people with cancer. It is often under-recognised because patients expect it and clinicians rarely ask about it, yet it limits daily activities, work and quality of life long after treatment ends.
# Recommendations
## Screening
All patients should be screened for fatigue at their first visit, at regular intervals during treatment and during follow-up, using a simple numeric rating scale from 0 to 10.
## Interventions
- Offer a supervised or home-based exercise programme of moderate intensity to patients who can take part safely.
- Offer cognitive behavioural therapy or mindfulness-based interventions, which reduce fatigue during and after treatment.
- Treat contributing conditions such as anaemia, hypothyroidism, depression, pain and sleep disturbance.
Psychostimulants should not be used routinely, because the trials showed no consistent benefit over placebo in unselected patients with cancer-related fa{-}tigue.
# Acknowledgements
Thanks to the patient representatives who reviewed this fixture.
""")

FIXTURE_PDFS["www.cancercareontario.ca/sites/ccocancercare/files/guidelines/full/pebc-mucositis.pdf"] = _cco(
    "12-10", "Prevention and Treatment of Oral Mucositis", """
# Intended Purpose
This guideline informs clinicians caring for adults receiving chemotherapy or radiotherapy for head and neck cancer about the prevention and treatment of oral mucositis.
# Recommendations
- All patients should receive an oral assessment and dental review before treatment starts, and be taught a basic oral care protocol with a soft toothbrush and bland rinses.
- Oral cryotherapy with ice chips for thirty minutes is recommended for patients receiving bolus fluorouracil.
- Photobiomodulation therapy may be offered to prevent mucositis in patients receiving radiotherapy to the head and neck.
- Pain from mucositis should be managed with topical agents and, when needed, systemic opioids, following a stepwise approach.
Patients who cannot eat or drink because of severe mucositis need early assessment by a dietitian, because weight loss during treatment is linked to poorer outcomes and interrupted treatment.
# Contacts
Program in Evidence-Based Care, fixture address.
""")


def _cdc(volume: str, title: str, body: str) -> dict:
    return {"markup": f"= {title}\n" + body, "title": title,
            "header": f"Recommendations and Reports / Vol. {volume} / Fixture copy", "footer": "{page}"}


FIXTURE_PDFS["stacks.cdc.gov/view/cdc/101201/cdc_101201_DS1.pdf"] = _cdc(
    "73", "Clinical Guidance for Postexposure Prophylaxis of Rabies", """
# Summary
This report updates recommendations for the prevention of human rabies after an exposure to a potentially rabid animal. It replaces earlier guidance on the number of vaccine doses for people who have not been vaccinated before.
# Introduction
Rabies is almost always fatal once symptoms appear, but it can be prevented by prompt wound care and postexposure prophylaxis. Most exposures in the United States involve bats, raccoons, skunks and foxes, while dog bites remain the main source of exposure during travel abroad.
# Recommendations
## Wound care
All bite wounds and scratches should be washed immediately and thoroughly with soap and water for about fifteen minutes. A virucidal agent such as povidone iodine should be used when it is available.
## Previously unvaccinated persons
- Give human rabies immune globulin once, on day 0, infiltrating as much as possible into and around the wound.
- Give four doses of rabies vaccine, on days 0, 3, 7 and 14.
- Persons with altered immunocompetence should receive a fifth dose on day 28 and have their antibody response checked.
<<page>>
## Previously vaccinated persons
Persons who have completed a preexposure or postexposure series should receive two doses of vaccine, on days 0 and 3, and do not need immune globulin.
# Acknowledgements
The fixture authors thank the state health departments that contributed data.
""")

FIXTURE_PDFS["stacks.cdc.gov/view/cdc/101201/cdc_101201_DS2.pdf"] = {
    "markup": "= Appendix: Rabies vaccine dosing table\nSee the table in the main report.", "title": "Appendix"}

FIXTURE_PDFS["stacks.cdc.gov/view/cdc/101202/cdc_101202_DS1.pdf"] = _cdc(
    "72", "Recommendations for Hepatitis C Screening Among Adults", """
# Summary
This report provides recommendations for universal hepatitis C virus screening of adults and of pregnant persons. Screening once in a lifetime is recommended for all adults aged 18 years and older, except where the prevalence of infection is below 0.1 percent.
# Background
Hepatitis C is the most common bloodborne infection in the country. Many infected persons are unaware of their infection because it causes few symptoms until liver damage is advanced, and curative treatment with direct-acting antivirals is now available for almost all of them.
# Recommendations
- Screen all adults at least once in a lifetime with a hepatitis C antibody test followed by a nucleic acid test when the antibody test is reactive.
- Screen all pregnant persons during each pregnancy.
- Test persons with ongoing risk factors, such as injection drug use, regardless of age, and repeat testing periodically while the risk continues.
Clinicians should link every person with current infection to care and treatment, and counsel them on how to avoid transmitting the virus to others.
# Acknowledgments
Thanks to the reviewers of this fixture report.
""")

FIXTURE_PDFS["stacks.cdc.gov/view/cdc/101203/cdc_101203_DS1.pdf"] = {"markup": ""}  # a scan: no text layer


def _icrc(title: str, body: str) -> dict:
    return {"markup": f"= {title}\nInternational Committee of the Red Cross (fixture edition)\n<<page>>\n" + body,
            "header": title, "footer": "ICRC {page}"}


FIXTURE_PDFS["library.icrc.org/library/docs/DOC/icrc-4105-fixture.pdf"] = _icrc(
    "War Surgery Field Manual", """
# Chapter 1. Triage
Triage is the sorting of the wounded according to the urgency of their needs and the resources available. In a mass-casualty situation the aim is to do the greatest good for the greatest number, which means that some patients with survivable wounds will wait while others are treated first.
- Category I: serious wounds that need immediate surgery and that have a good chance of recovery.
- Category II: wounds that can wait for surgery without endangering life.
- Category III: superficial wounds that can be managed without surgery.
- Category IV: severe wounds with a poor chance of survival, who receive supportive care.
# Chapter 2. Initial wound management
All war wounds are contaminated. Surgical management consists of excision of dead and damaged tissue, leaving the wound open, and delayed primary closure after four to five days when the wound is clean.
Antibiotics do not replace surgery, but penicillin given as soon as possible after wounding reduces the risk of severe infection.
# Acknowledgements
The fixture editors thank the surgeons who contributed.
""")

FIXTURE_PDFS["www.icrc.org/sites/default/files/document/file_list/first-aid-armed-conflicts-fixture.pdf"] = _icrc(
    "First Aid in Armed Conflicts and Other Situations of Violence", """
# 1 Safety first
First-aiders must assess the scene before approaching the wounded. Personal safety comes first, because an injured first-aider cannot help anyone and becomes another casualty for the team to manage.
# 2 Assessing the casualty
Use a systematic approach for every casualty, checking the airway, breathing and circulation, and looking for severe bleeding that must be controlled at once by direct pressure or a tourniquet.
## Bleeding control
- Apply firm direct pressure on the wound with a clean dressing.
- If bleeding from a limb cannot be controlled by pressure, apply a tourniquet high on the limb and note the time.
- Keep the casualty warm and lying down to prevent shock.
Evacuate casualties to the nearest health facility as soon as it is safe to do so, with a written note of the care given.
# Contacts
International Committee of the Red Cross, fixture address.
""")

FIXTURE_PDFS["shop.icrc.org/media/catalog/product/pdf/anaesthesia-handbook-fixture.pdf"] = _icrc(
    "Anaesthesia Handbook for Limited-Resource Settings", """
# Introduction
This handbook is for anaesthetists working in hospitals with limited resources during armed conflict, where oxygen, electricity and monitoring equipment may be unreliable.
# Ketamine anaesthesia
Ketamine is the agent of choice when monitoring is limited, because it preserves airway reflexes and blood pressure. Give it with a benzodiazepine to reduce emergence reactions, and keep suction and a bag-valve-mask at hand for every case.
# Spinal anaesthesia
Spinal anaesthesia is safe and effective for surgery below the umbilicus in patients who are not hypovolaemic. Correct hypovolaemia before the block, and use a fine pencil-point needle to reduce post-dural puncture headache.
# Acknowledgements
Thanks to the fixture reviewers.
""")


def _spor(title: str, publisher: str, body: str) -> dict:
    return {"markup": f"= {title}\n{publisher}\n" + body, "title": title, "footer": "{page}"}


FIXTURE_PDFS["sporevidencealliance.ca/wp-content/uploads/2021/09/CPG-depression-primary-care-fixture.pdf"] = _spor(
    "Depression in Adults: A Primary Care Guideline", "Fixture Canadian Primary Care Network | 2021", """
# Background
Depression is common in primary care and often coexists with chronic physical illness. Many patients present with fatigue, poor sleep or pain rather than low mood, so clinicians should ask directly about mood and loss of interest.
# Recommendations
- Screen adults for depression when systems are in place for accurate diagnosis, treatment and follow-up.
- Offer guided self-help or cognitive behavioural therapy for mild to moderate depression.
- Offer an antidepressant combined with psychological therapy for moderate to severe depression, and review response after four to six weeks.
- Ask every patient with depression about suicidal thoughts and make a safety plan with those at risk.
Continue antidepressant treatment for at least six months after remission to reduce the risk of relapse, and taper slowly when stopping.
# Conflicts of interest
None of the fixture authors declared conflicts.
""")

FIXTURE_PDFS["sporevidencealliance.ca/wp-content/uploads/2022/02/CPG-osteoporosis-fixture.pdf"] = _spor(
    "Osteoporosis Management in Postmenopausal Women", "Fixture Osteoporosis Collaborative | 2022", """
# Purpose
This guideline helps clinicians assess fracture risk and choose treatment for postmenopausal women with low bone density or a previous fragility fracture.
# Assessment
Assess the ten-year risk of major osteoporotic fracture with a validated tool that combines bone mineral density with clinical risk factors such as age, previous fracture, glucocorticoid use and falls.
# Treatment
- Offer pharmacological treatment to women at high fracture risk, starting with an oral bisphosphonate when there is no contraindication.
- Ensure an adequate intake of calcium and vitamin D, and recommend regular weight-bearing and balance exercise.
- Reassess fracture risk after three to five years of bisphosphonate treatment to decide whether a drug holiday is appropriate.
Women who have a fracture while on treatment should be referred for specialist review of adherence, secondary causes and alternative therapies.
# Conflicts of Interest
Declared in the fixture appendix.
""")

FIXTURE_PDFS["sporevidencealliance.ca/wp-content/uploads/2023/05/CPG-concussion-fixture.pdf"] = _spor(
    "Concussion in Children and Youth", "Fixture Paediatric Injury Network | 2023", """
# Introduction
Concussion is a common injury in children and youth, most often from sport, play or falls. Most recover within four weeks, but a minority have persisting symptoms that affect school and activity.
# Recommendations
- Remove any child with a suspected concussion from play at once, and do not allow a return on the same day.
- Encourage a brief period of relative rest of one to two days, followed by a gradual return to light activity and school.
- Refer children whose symptoms last more than four weeks to an interdisciplinary concussion service.
Give families written information on warning signs that need urgent assessment, such as worsening headache, repeated vomiting or drowsiness.
# Conflicts of interest
None declared.
""")


def _who(title: str, isbn: str, body: str, pdf_title: str | None = None) -> dict:
    front = f"""
= {title}
ISBN {isbn} (electronic version)

World Health Organization 2024. Some rights reserved. This work is available under the CC BY-NC-SA 3.0 IGO licence.

Under the terms of this licence, you may copy, redistribute and adapt the work for non-commercial purposes, provided the work is appropriately cited.
<<page>>
# Contents
Abbreviations 1

Introduction 2

Recommendations 2

Acknowledgements 3
# Abbreviations
WHO World Health Organization
<<page>>
"""
    return {"markup": front + body, "title": pdf_title or title, "header": title, "footer": "Page {page}"}


FIXTURE_PDFS["iris.who.int/bitstream/handle/10665/376001/9789240090001-eng.pdf%3Fsequence=1"] = _who(
    "WHO guideline on the management of pneumonia in children under five", "978-92-4-009000-1", """
# 1. Introduction
Pneumonia remains a leading infectious cause of death in children under five years of age, most of them in low- and middle-income countries. This guideline updates recommendations for the community and first-level health facility management of children with cough or difficult breathing.
# 2. Recommendations
## 2.1 Chest-indrawing pneumonia
Children aged 2 to 59 months with chest-indrawing pneumonia and no danger signs should be treated with oral amoxicillin at home, with a follow-up visit after three days.
## 2.2 Fast-breathing pneumonia
- Treat fast-breathing pneumonia without chest indrawing with oral amoxicillin for three days in areas of low HIV prevalence.
- Children with any general danger sign need a first dose of antibiotic and urgent referral to hospital.
- Pulse oximetry should be used wherever possible to identify hypoxaemia.
# Acknowledgements
WHO thanks the members of the fixture guideline development group.
""")

FIXTURE_PDFS["iris.who.int/bitstream/handle/10665/376003/9789240090003-eng.pdf%3Fsequence=1"] = _who(
    "WHO guideline on the management of pneumonia in children under five: executive summary", "978-92-4-009000-3", """
# Introduction
This executive summary presents the recommendations of the full guideline on the management of pneumonia in children under five years of age, for programme managers and policy makers.
# Recommendations
Children with chest-indrawing pneumonia and no danger signs should be treated with oral amoxicillin at home. Children with danger signs need urgent referral. Pulse oximetry should be available in all first-level facilities to detect hypoxaemia.
Programme managers should ensure a reliable supply of amoxicillin dispersible tablets and train community health workers in counting breaths. National programmes are encouraged to adapt the recommendations to local epidemiology, to integrate them into existing child health services, and to monitor how many children receive correct treatment.
# Acknowledgements
See the full guideline.
""", pdf_title="WHO guideline on the management of pneumonia in children under five")

FIXTURE_PDFS["cdn.who.int/media/docs/default-source/malaria/vector-control-guidelines-fixture.pdf%3Fsfvrsn=1a2b3c_3"] = _who(
    "Guidelines for malaria vector control", "978-92-4-009000-2", """
# Introduction
Vector control is a vital component of malaria prevention. This guideline brings together recommendations on insecticide-treated nets, indoor residual spraying and supplementary interventions, and on how to manage insecticide resistance.
# Recommendations
- Insecticide-treated nets should be deployed for universal coverage of populations at risk of malaria.
- Indoor residual spraying with an effective insecticide should be deployed where nets alone are insufficient.
- Pyrethroid-chlorfenapyr nets should be prioritised in areas where mosquitoes are resistant to pyrethroids.
Larval source management may be used as a supplementary intervention where aquatic habitats are few, fixed and findable. Programmes should monitor insecticide resistance at least once a year in each sentinel site.
# Acknowledgements
WHO thanks the fixture technical experts.
""")


def render_pdf(spec: dict) -> bytes:
    return write_pdf(spec["markup"], title=spec.get("title"), header=spec.get("header", ""),
                     footer=spec.get("footer", ""))


def main() -> None:
    for relative, spec in FIXTURE_PDFS.items():
        path = SITES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_pdf(spec))
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
