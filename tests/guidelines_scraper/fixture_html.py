"""The HTML and sitemap pages of the closed-source fixture sites (AAFP, CPS, drugs.com,
GuidelineCentral, IDSA, Mayo Clinic, RCH) under tests/guidelines_scraper/fixtures/sites/, and the
redesigned IDSA site under fixtures/site_changes/idsa/. Every page carries what the real site wraps
around its articles (cookie banners, mega menus, breadcrumbs, related boxes, newsletter forms,
analytics and consent scripts, footers), so the tests show that boilerplate is removed; each
host folder's README.md says which public material the markup follows. All text is invented.

The committed files are exactly what this module renders (a test checks it); after editing,
regenerate them with

    python -m tests.guidelines_scraper.fixture_html
"""

from __future__ import annotations

import gzip
import html
import json
import re
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

# path under fixtures/ (a "%3F" for a query, as the fixture server maps it) -> file content
FIXTURE_PAGES: dict[str, bytes] = {}


def page(path: str, content: str | bytes) -> None:
    FIXTURE_PAGES[path] = content.encode("utf-8") if isinstance(content, str) else content


def gzipped(content: str) -> bytes:
    return gzip.compress(content.encode("utf-8"), mtime=0)  # mtime 0: the same bytes on every run


# -- shared building blocks ------------------------------------------------------------------------

def esc(text: str) -> str:
    return html.escape(text, quote=True)


def slug(label: str, sep: str = "-") -> str:
    return re.sub(r"[^a-z0-9]+", sep, label.lower()).strip(sep)


def blocks(items: list[tuple]) -> str:
    """Article body markup from ("h2", text), ("h3", text), ("h4", text), ("p", text), ("ul", [items]),
    ("ol", [items]), ("table", [[cells], ...]) and ("raw", markup) blocks; text may hold inline tags."""
    out = []
    for kind, value in items:
        if kind in ("h2", "h3", "h4", "p"):
            out.append(f"<{kind}>{value}</{kind}>")
        elif kind in ("ul", "ol"):
            out.append(f"<{kind}>" + "".join(f"<li>{item}</li>" for item in value) + f"</{kind}>")
        elif kind == "table":
            head, *rows = value
            out.append("<table class=\"table\"><thead><tr>" + "".join(f"<th>{c}</th>" for c in head)
                       + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
                       + "</tbody></table>")
        elif kind == "raw":
            out.append(value)
        else:
            raise ValueError(kind)
    return "\n".join(out)


def menu(groups: dict[str, list[str]], base: str, cls: str) -> str:
    """A mega menu: one column of links per group; hrefs made from the labels under `base`."""
    columns = []
    for group, labels in groups.items():
        links = "".join(f'<li class="{cls}__item"><a class="{cls}__link" href="{base}/{slug(group)}/{slug(label)}">'
                        f"{esc(label)}</a></li>" for label in labels)
        columns.append(f'<div class="{cls}__column"><h3 class="{cls}__heading">{esc(group)}</h3>'
                       f'<ul class="{cls}__list">{links}</ul></div>')
    return "\n".join(columns)


def script(code: str, **attrs: str) -> str:
    attributes = "".join(f' {k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
    return f"<script{attributes}>\n{code}\n</script>"


def data_layer(values: dict) -> str:
    return script("window.dataLayer = window.dataLayer || [];\nwindow.dataLayer.push("
                  + json.dumps(values, indent=2, sort_keys=True) + ");")


VENDORS = ["Site analytics", "Tag manager", "Video player", "Survey tool", "Session replay", "Ad server",
           "Audience measurement", "Social sharing", "Chat widget", "Error monitoring", "Search provider",
           "Content delivery network", "Newsletter platform", "A/B testing", "Heat maps", "Accessibility toolbar"]


def consent_config(site: str) -> str:
    """The consent manager's inline configuration, as cookie-banner products ship it."""
    vendors = [{"id": 100 + i, "name": name, "purposes": ["measurement", "personalisation"][: 1 + i % 2],
                "cookies": [f"_{slug(name, '_')}_{n}" for n in ("id", "session", "consent")],
                "retentionDays": 30 * (1 + i % 13), "policyUrl": f"https://vendors.example.net/{slug(name)}/privacy"}
               for i, name in enumerate(VENDORS)]
    config = {"site": site, "version": 7, "defaultLanguage": "en", "banner": {"position": "bottom", "theme": "light"},
              "categories": ["strictly-necessary", "performance", "functional", "targeting"], "vendors": vendors}
    return script("window.__consentConfig = " + json.dumps(config, indent=1) + ";", id="consent-config")


def json_ld(values: dict) -> str:
    return script(json.dumps(values, indent=2), type="application/ld+json")


def link_items(labels: list[str], base: str) -> str:
    return "".join(f'<li><a href="{base}/{slug(label)}">{esc(label)}</a></li>' for label in labels)


def sitemap_index(urls: list[str]) -> str:
    entries = "".join(f"\n  <sitemap><loc>{u}</loc><lastmod>2024-05-01</lastmod></sitemap>" for u in urls)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{entries}\n</sitemapindex>\n")


def urlset(urls: list[str]) -> str:
    entries = "".join(f"\n  <url><loc>{u}</loc><lastmod>2024-04-1{i % 10}</lastmod><changefreq>monthly</changefreq>"
                      "</url>" for i, u in enumerate(urls))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{entries}\n</urlset>\n")


def robots(host: str, extra: str = "") -> str:
    return f"# Fixture robots.txt for {host} (invented).\nUser-agent: *\nDisallow: /search\n{extra}"


# -- AAFP (www.aafp.org): Adobe Experience Manager pages, discovery through the sitemap index ----------

AAFP = "sites/www.aafp.org"
AAFP_MENU = {
    "Clinical Insights": ["Cardiometabolic health", "Infectious disease", "Behavioral health", "Women's health",
                          "Pediatrics", "Geriatrics", "Respiratory health", "Substance use", "Immunizations",
                          "Preventive care", "Musculoskeletal health", "Dermatology"],
    "Journals": ["American Family Physician", "Family Practice Management", "FPM Toolbox", "AFP by Topic",
                 "Annals of Family Medicine", "Podcasts", "Author guidelines", "Subscribe"],
    "CME": ["CME Center", "Live courses", "Self-study", "Board review", "Family Medicine Experience",
            "Point-of-care learning", "CME credit system", "Transcript"],
    "Practice Management": ["Payment", "Coding", "Quality programs", "Practice transformation", "Telehealth",
                            "Health IT", "Physician well-being", "Team-based care"],
    "Advocacy": ["Federal advocacy", "State advocacy", "Speak Out", "Policies", "Letters and testimony",
                 "Family medicine champions"],
    "Membership": ["Join", "Renew", "Member benefits", "Chapters", "Member interest groups", "Students",
                   "Residents", "New physicians"],
}


def aafp_drawer(anchor: str, title: str, body: list[tuple]) -> str:
    return f"""<div class="standalone-drawer container"><div class="drawer" data-testid="drawer" id="{anchor}">
  <button class="drawer__toggle" aria-expanded="false" aria-controls="{anchor}-body"><span class="icon">keyboard_arrow_down</span></button>
  <div class="drawer__wrapper" id="{anchor}-body"><h3 class="drawer-header type-h3">{title}</h3>
{blocks(body)}
  </div></div></div>"""


def aafp_accordion(label: str, drawers: list[str]) -> str:
    return (f'<div class="container accordion--layout-standard"><h3 class="accordion__heading type-h3">{label}</h3>'
            f'<div class="accordion__drawers">{"".join(drawers)}</div></div>')


def aafp_page(path: str, topic: str, category: str, intro: str, sections: str) -> None:
    url = f"https://www.aafp.org{path}"
    related = link_items(["Choosing Wisely recommendations", "AFP by Topic", "Clinical practice guideline manual",
                          "Evidence-based medicine toolkit", "Patient handouts"], "/family-physician/patient-care")
    content = f"""<!DOCTYPE html>
<html lang="en" class="no-js">
<head>
<meta charset="UTF-8">
<title>{esc(topic)} | AAFP</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="Clinical recommendations and resources on {esc(topic.lower())} for family physicians.">
<meta property="og:title" content="{esc(topic)}">
<meta property="og:url" content="{url}">
<meta name="template" content="clinical-insights-topic">
<link rel="canonical" href="{url}">
<link rel="stylesheet" href="/etc.clientlibs/aafp/clientlibs/clientlib-site.min.css" type="text/css">
{data_layer({"page": {"pageType": "clinical-insights-topic", "section": "Clinical Insights", "category": category,
                      "topic": topic, "path": path, "language": "en-US", "template": "/conf/aafp/templates/topic"},
             "user": {"loginStatus": "anonymous", "memberType": "none"}, "event": "pageLoad"})}
{consent_config("www.aafp.org")}
{json_ld({"@context": "https://schema.org", "@type": "MedicalWebPage", "name": topic, "url": url,
          "publisher": {"@type": "Organization", "name": "American Academy of Family Physicians"},
          "audience": {"@type": "MedicalAudience", "audienceType": "Clinician"}})}
</head>
<body class="page basicpage">
<div id="onetrust-banner-sdk" class="otFlat" role="region" aria-label="Cookie banner">
  <div class="ot-sdk-container"><p id="onetrust-policy-text">Cookies keep you signed in, measure visits and tailor what you see; manage them in the settings.</p>
  <button id="onetrust-accept-btn-handler">Accept all cookies</button><button id="onetrust-pc-btn-handler">Cookie settings</button></div>
</div>
<a class="skip-link" href="#main-content">Skip to main content</a>
<header class="cmp-experiencefragment cmp-experiencefragment--header">
  <div class="header__utility"><a href="/membership/join.html">Join</a> <a href="/login.html">Log in</a> <a href="/shop.html">Shop</a> <a href="/search.html">Search</a></div>
  <a class="header__logo" href="/home.html"><img src="/content/dam/aafp/logo.svg" alt="AAFP: American Academy of Family Physicians"></a>
  <nav class="cmp-navigation" aria-label="Main"><div class="mega-menu">
{menu(AAFP_MENU, "", "mega-menu")}
  </div></nav>
</header>
<main id="main-content" class="main">
<div class="root container responsivegrid"><div class="aem-Grid aem-Grid--12 aem-Grid--default--12 ">
<nav class="cmp-breadcrumb" aria-label="Breadcrumb"><ol class="cmp-breadcrumb__list">
  <li class="cmp-breadcrumb__item"><a href="/home.html">Home</a></li>
  <li class="cmp-breadcrumb__item"><a href="/clinical-insights.html">Clinical Insights</a></li>
  <li class="cmp-breadcrumb__item"><a href="/clinical-insights/{slug(category)}.html">{esc(category)}</a></li>
  <li class="cmp-breadcrumb__item cmp-breadcrumb__item--active">{esc(topic)}</li></ol></nav>
<div class="cmp-title"><h1 class="cmp-title__text">{esc(topic)}</h1></div>
<div class="cmp-social-share"><a href="#" class="share--email">Email</a> <a href="#" class="share--print">Print</a> <a href="#" class="share--linkedin">Share</a></div>
<div class="cmp-text"><p>{intro}</p></div>
{sections}
<div class="cmp-related-content"><h2>Related content</h2><ul>{related}</ul></div>
</div></div>
</main>
<footer class="cmp-experiencefragment cmp-experiencefragment--footer">
  <div class="footer__columns">
    <ul>{link_items(["About us", "Careers", "Contact us", "Newsroom", "Foundation", "Chapters"], "/about")}</ul>
    <ul>{link_items(["Privacy policy", "Terms of use", "Accessibility", "Advertising", "Permissions"], "/about/legal")}</ul>
  </div>
  <p class="footer__copyright">Copyright 2024 American Academy of Family Physicians. All rights reserved. 11400 Tomahawk Creek Parkway, Leawood, KS.</p>
</footer>
{script("(function(){var d=document.documentElement;d.className=d.className.replace('no-js','js');})();")}
<script src="/etc.clientlibs/aafp/clientlibs/clientlib-site.min.js"></script>
</body>
</html>
"""
    page(f"{AAFP}{path}", content)


AAFP_RESOURCES = """<h2>Practice and payment resources</h2>
<div class="drawer__wrapper"><h3 class="drawer-header type-h3">Coding for chronic care management</h3>
<p>Use the current codes for care management services and document the time spent each month.</p></div>
<h2>Patient education</h2><p>Share the familydoctor.org handouts on this topic with your patients.</p>"""

aafp_page("/clinical-insights/cardiometabolic-health/hypertension", "Hypertension", "Cardiometabolic health",
          "Find clinical recommendations, practice resources and CME on the detection and management of high blood pressure in adults.",
          "<h2>Guidelines and recommendations</h2>"
          + aafp_accordion("Clinical practice guidelines", [
              aafp_drawer("htn-adults", "Treatment of hypertension in adults", [
                  ("h4", "Pharmacologic treatment thresholds and targets in primary care"),
                  ("p", "(Developed by the AAFP, March 2022)"),
                  ("h4", "Key Recommendations"),
                  ("ul", ["Offer antihypertensive drugs to adults with sustained office blood pressure of 140/90 mm Hg or higher, confirmed by home or ambulatory readings before starting treatment.",
                          "Aim for a standard target of less than 140/90 mm Hg for most adults, because lower targets add little benefit and more adverse events in routine practice.",
                          "Consider a lower target for selected adults at high cardiovascular risk after a shared discussion of benefits, harms and the burden of extra medicines.",
                          "Start with a thiazide diuretic, an ACE inhibitor, an angiotensin receptor blocker or a calcium channel blocker, and review the response after four weeks."]),
                  ("p", "See the <a href=\"/family-physician/patient-care/clinical-recommendations/htn.html\">full recommendation</a> for the evidence review."),
              ]),
              aafp_drawer("htn-measure", "Blood pressure measurement", [
                  ("p", "(Affirmation of Value, October 2023)"),
                  ("p", "Measure blood pressure with a validated automated device after five minutes of quiet rest, with the arm supported at heart level and a cuff of the right size. Use the mean of at least two readings, and confirm a raised office reading with home monitoring or ambulatory monitoring before labelling a patient as hypertensive."),
              ]),
          ])
          + aafp_accordion("Clinical preventive service recommendations", [
              aafp_drawer("htn-screening", "Hypertension screening in adults", [
                  ("p", "The AAFP recommends screening for hypertension in adults 18 years or older with office blood pressure measurement, with confirmation outside the clinical setting before starting treatment. Screen every year from age 40 and in adults at increased risk, and every three to five years in younger adults with normal readings."),
                  ("p", "Grade: A recommendation."),
              ]),
          ])
          + AAFP_RESOURCES)

aafp_page("/clinical-insights/infectious-disease/community-acquired-pneumonia", "Community-acquired pneumonia",
          "Infectious disease",
          "Clinical recommendations on the diagnosis and outpatient management of pneumonia acquired in the community.",
          "<h2>Guidelines and recommendations</h2>"
          + aafp_accordion("Clinical practice guidelines", [
              aafp_drawer("cap-outpatient", "Outpatient treatment of community-acquired pneumonia", [
                  ("p", "(Endorsed, January 2021)"),
                  ("p", "The AAFP endorses the joint guideline on the diagnosis and treatment of adults with community-acquired pneumonia. Key points for family physicians follow."),
                  ("ul", ["Obtain a chest radiograph when pneumonia is suspected clinically, since examination findings alone are not reliable.",
                          "Do not routinely obtain sputum cultures or blood cultures in adults treated as outpatients without risk factors for resistant organisms.",
                          "Treat healthy adults without comorbidities with amoxicillin or doxycycline; add a macrolide only where local resistance is low.",
                          "Use a validated severity score together with clinical judgement to decide between home treatment and admission.",
                          "Treat for a minimum of five days, and continue until the patient has been clinically stable for at least two days."]),
              ]),
              aafp_drawer("cap-children", "Pneumonia in children older than three months", [
                  ("p", "(Affirmation of Value, June 2019)"),
                  ("p", "Most preschool children with mild pneumonia have a viral illness and do not need antibiotics. When bacterial pneumonia is likely, high-dose amoxicillin is the first choice for children who are fully immunised, and a follow-up contact within two days should be arranged for every child managed at home."),
              ]),
          ])
          + AAFP_RESOURCES)

aafp_page("/clinical-insights/behavioral-health/depression", "Depression", "Behavioral health",
          "Recommendations on screening for and treating depression in adolescents and adults in primary care.",
          "<h2>Guidelines and recommendations</h2>"
          + aafp_accordion("Clinical preventive service recommendations", [
              aafp_drawer("dep-adults", "Depression screening in adults", [
                  ("p", "The AAFP recommends screening for depression in the adult population, including pregnant and postpartum women, when systems are in place to ensure accurate diagnosis, effective treatment and appropriate follow-up. A two-question tool is a reasonable first step, followed by a longer validated questionnaire when either answer is positive."),
              ]),
              aafp_drawer("dep-teens", "Depression screening in adolescents", [
                  ("p", "The AAFP recommends screening for major depressive disorder in adolescents 12 to 18 years of age. Screening should be linked to care pathways that offer psychotherapy, medicine or both, with close monitoring for suicidal thoughts during the first weeks of any antidepressant treatment."),
                  ("p", "The AAFP supports the position of the national task force on this topic."),
              ]),
          ])
          + AAFP_RESOURCES)

# No guideline section: a practice-management topic page (too short once the resources are cut).
aafp_page("/clinical-insights/practice-management/chronic-care-coding", "Chronic care coding", "Practice management",
          "Coding tips for chronic care management visits.", AAFP_RESOURCES)

AAFP_SITEMAP = "https://www.aafp.org/sitemaps"
page(f"{AAFP}/sitemap.xml", sitemap_index([f"{AAFP_SITEMAP}/clinical-insights.xml.gz", f"{AAFP_SITEMAP}/journals.xml",
                                           "https://shop.aafp.org/sitemap.xml"]))
page(f"{AAFP}/sitemaps/clinical-insights.xml.gz", gzipped(urlset([
    "https://www.aafp.org/clinical-insights",
    "https://www.aafp.org/clinical-insights/cardiometabolic-health",
    "https://www.aafp.org/clinical-insights/cardiometabolic-health/hypertension",
    "https://www.aafp.org/clinical-insights/infectious-disease/community-acquired-pneumonia",
    "https://www.aafp.org/clinical-insights/behavioral-health/depression",
    "https://www.aafp.org/clinical-insights/practice-management/chronic-care-coding",
    "https://www.aafp.org/clinical-insights/womens-health/menopause-retired",
    "https://www.aafp.org/clinical-insights/cardiometabolic-health/hypertension/cme.pdf",
])))
page(f"{AAFP}/sitemaps/journals.xml", urlset([
    "https://www.aafp.org/pubs/afp/issues/2024/0500/hypertension-update.html",
    "https://www.aafp.org/pubs/fpm/issues/2024/0300/coding-tips.html",
]))
page(f"{AAFP}/robots.txt", robots("www.aafp.org", "Disallow: /login.html\nSitemap: https://www.aafp.org/sitemap.xml\n"))


# -- CPS (cps.ca): statements by date, paged by "Next" links (/P10 offsets); statement pages -----------

CPS = "sites/cps.ca"
CPS_MENU = {
    "Documents": ["Position statements", "Practice points", "Statements by date", "Statements by topic",
                  "Archived statements", "Clinical tools"],
    "Education": ["Continuing professional development", "Annual conference", "Learning modules", "Webinars",
                  "Residents and students", "Test your knowledge"],
    "Advocacy": ["Status report", "Policy briefs", "Federal budget", "Children's rights", "Indigenous health"],
    "Membership": ["Join", "Renew", "Sections", "Committees", "Awards", "Careers"],
    "About": ["Board of directors", "Staff", "Strategic plan", "Annual report", "Contact us", "Media"],
}


def cps_chrome(title: str, body: str, path: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)} | Canadian Paediatric Society</title>
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="canonical" href="https://cps.ca{path}">
<link rel="alternate" hreflang="fr" href="https://cps.ca/fr{path[3:]}">
<link rel="stylesheet" href="/assets/css/app.css?v=20240301">
{data_layer({"site": "cps.ca", "language": "en", "section": "documents", "path": path, "template": "documents/statement"})}
{consent_config("cps.ca")}
</head>
<body class="page--documents">
<div class="cookie-notice hide-for-print" role="dialog"><p>Cookies help us run this site and count visits. Choose "I agree" to allow them.</p><a class="button" href="#">I agree</a> <a href="/en/privacy">Privacy policy</a></div>
<a href="#main-content" class="show-on-focus">Skip to Content</a>
<header class="site-header hide-for-print">
  <div class="top-bar"><a href="/en" class="logo"><img src="/assets/img/cps-logo.svg" alt="Canadian Paediatric Society"></a>
  <p class="tagline">Paediatricians working together for the health of young Canadians.</p>
  <ul class="utility"><li><a href="/fr{path[3:]}">Français</a></li><li><a href="/en/members">Members</a></li><li><a href="/en/donate">Donate</a></li></ul></div>
  <nav class="main-nav" aria-label="Main">
{menu(CPS_MENU, "/en", "main-nav")}
  </nav>
</header>
<main id="main-content">
{body}
</main>
<footer class="site-footer hide-for-print">
  <ul class="footer-links">{link_items(["Contact us", "Careers", "Privacy", "Terms of use", "Accessibility", "Sitemap"], "/en")}</ul>
  <p>Canadian Paediatric Society, 100-2305 St. Laurent Blvd., Ottawa, Ontario. Charitable registration number withheld in this fixture.</p>
  <p>&copy; 2024 Canadian Paediatric Society. All rights reserved.</p>
</footer>
{script("document.querySelectorAll('.cookie-notice .button').forEach(function(b){b.addEventListener('click',function(e){e.preventDefault();document.cookie='cps_consent=1;path=/';b.parentNode.remove();});});")}
</body>
</html>
"""


def cps_listing(path: str, items: list[tuple[str, str, str, str]], next_href: str | None, page_no: int,
                file: str | None = None) -> None:
    rows = "".join(f"""<div class="stmt-row"><div class="stmt-type">{kind}</div>
<div class="stmt-title"><a href="/en/documents/position/{slug_}">{esc(title)}</a></div>
<div class="stmt-date">{date}</div></div>""" for slug_, title, kind, date in items)
    pages = "".join(f'<li class="{"current" if n == page_no else ""}">{n}</li>' for n in (1, 2))
    nxt = f'<li><a class="next" href="{next_href}">Next &rsaquo;</a></li>' if next_href else ""
    body = f"""<div class="grid-x"><div class="cell main-body medium-8">
<nav class="breadcrumb"><a href="/en">Home</a> / <a href="/en/documents">Documents</a> / Statements by date</nav>
<h1>Statements by date</h1>
<p>Current position statements and practice points of the Canadian Paediatric Society, newest first.</p>
{rows}
<ul class="pagination">{pages}{nxt}</ul>
</div>
<aside class="cell sidebar medium-4"><h2>Most read</h2>
<ul><li><a href="/en/documents/position/screen-time-preschool">Screen time and preschool children</a></li>
<li><a href="/en/documents/position/car-seat-safety">Car seat safety</a></li></ul>
<h2>Browse by topic</h2><ul>{link_items(["Adolescent health", "Community paediatrics", "Fetus and newborn", "Infectious diseases", "Nutrition", "Mental health"], "/en/documents/topic")}</ul>
</aside></div>"""
    page(f"{CPS}{file or path}", cps_chrome("Statements by date", body, path))


def cps_statement(slug_: str, title: str, kind: str, dates: str, content: list[tuple]) -> None:
    path = f"/en/documents/position/{slug_}"
    body = f"""<div class="grid-x"><div class="cell main-body medium-8"><div class="statement-wrapper">
<nav class="breadcrumb hide-for-print"><a href="/en">Home</a> / <a href="/en/documents">Documents</a> / {kind}</nav>
<p class="stmt-label">{kind}</p>
<h1>{esc(title)}</h1>
<p class="stmt-dates">{dates}</p>
<div class="share-tools hide-for-print"><a href="#">Print</a> <a href="#">Email</a> <a href="#">Share</a></div>
{blocks(content)}
<p class="hide-for-print"><a href="/en/education/test-your-knowledge"><img src="/assets/img/test.png" alt="Test your knowledge"></a></p>
<aside class="related-content hide-for-print"><h2>Related news</h2><ul><li><a href="/en/media/statement-news">New statement released</a></li></ul></aside>
</div></div>
<aside class="cell sidebar medium-4 hide-for-print"><h2>Related statements</h2><ul>{link_items(["Fever in infants", "Vitamin D supplementation", "Sleep in adolescents"], "/en/documents/position")}</ul></aside></div>"""
    page(f"{CPS}{path}", cps_chrome(title, body, path))


CPS_DISCLAIMER = ("p", "Disclaimer: This statement supports clinical judgement and does not replace it; care should be adapted to each child and family.")

cps_listing("/en/documents/statements-by-date", [
    ("bronchiolitis-infants", "Bronchiolitis: Recommendations for diagnosis and management in infants", "Position statement", "Posted: Mar 4, 2024"),
    ("sleep-technical-report", "Sleep duration in school-aged children: Technical report", "Technical report", "Posted: Feb 12, 2024"),
    ("iron-deficiency-toddlers", "Preventing iron deficiency in toddlers", "Practice point", "Posted: Jan 29, 2024"),
], "/en/documents/statements-by-date/P10", 1, file="/en/documents/statements-by-date.html")  # beside P10/
cps_listing("/en/documents/statements-by-date/P10", [
    ("concussion-return-to-learn", "Returning to school after a concussion", "Position statement", "Posted: Nov 20, 2023"),
    ("retired-teething-gels", "Teething gels in infants", "Practice point", "Posted: Oct 2, 2019"),
], None, 2)

cps_statement("bronchiolitis-infants", "Bronchiolitis: Recommendations for diagnosis and management in infants",
              "Position statement", "Posted: Mar 4, 2024 | Reaffirmed: Mar 4, 2024", [
    ("p", "Principal author(s): Fixture Paediatric Committee"),
    ("h2", "Abstract"),
    ("p", "Bronchiolitis is the most common reason for hospital admission in the first year of life. This statement updates advice on diagnosis, monitoring and supportive care, and on the many treatments that should no longer be used."),
    ("p", "Keywords: Bronchiolitis; Infants; Oxygen; Respiratory syncytial virus"),
    ("h2", "Diagnosis"),
    ("p", "Bronchiolitis is a clinical diagnosis in an infant with a viral prodrome followed by cough, increased work of breathing and crackles or wheeze. Chest radiographs, viral testing and blood tests are not needed for typical cases and can lead to unnecessary antibiotics."),
    ("h2", "Recommendations"),
    ("ul", ["Assess hydration and work of breathing; infants with severe distress, apnea or poor feeding need admission.",
            "Give supplemental oxygen only when oxygen saturation stays below 90 per cent while awake.",
            "Do not use salbutamol, epinephrine, corticosteroids or antibiotics routinely.",
            "Use nasogastric feeds when oral feeding is unsafe, before considering intravenous fluids.",
            "Discharge when the infant feeds well and saturation is adequate in room air, with clear advice to return."]),
    ("p", "Figure 1. Flow chart for the assessment of an infant with suspected bronchiolitis."),
    ("h2", "Acknowledgements"),
    ("p", "This statement was reviewed by the Acute Care Committee of the Canadian Paediatric Society."),
    ("h2", "References"),
    ("ol", ["Fixture A, Example B. Bronchiolitis in infants. Paediatr Child Health 2023;1:1-9."]),
    CPS_DISCLAIMER,
])
cps_statement("iron-deficiency-toddlers", "Preventing iron deficiency in toddlers", "Practice point",
              "Posted: Jan 29, 2024", [
    ("h2", "Abstract"),
    ("p", "Iron deficiency remains common in Canadian toddlers and may affect neurodevelopment. This practice point describes dietary prevention and when to screen."),
    ("h2", "Key points"),
    ("ul", ["Offer iron-rich foods such as meat, fish, eggs, legumes and iron-fortified cereals twice daily from six months of age.",
            "Limit cow's milk to 500 mL a day after 12 months, because larger volumes displace iron-rich foods and can cause occult blood loss.",
            "Avoid bottle use after 18 months, which is associated with excessive milk intake.",
            "Screen toddlers with risk factors, such as prematurity, low birth weight or a restricted diet, with a hemoglobin and ferritin measurement.",
            "Treat iron deficiency anemia with oral elemental iron at 3 to 6 mg/kg/day and recheck hemoglobin after one month."]),
    ("h2", "Counselling families"),
    ("p", "Families benefit from practical advice about affordable iron-rich foods, culturally appropriate choices and storing iron supplements safely, since accidental iron ingestion is dangerous for young children."),
    ("h2", "Selected resources"),
    ("ul", ["Caring for kids: Iron and your child"]),
    CPS_DISCLAIMER,
])
cps_statement("concussion-return-to-learn", "Returning to school after a concussion", "Position statement",
              "Posted: Nov 20, 2023 | Updated: Jan 5, 2024", [
    ("h2", "Abstract"),
    ("p", "Most children and adolescents recover from a concussion within four weeks. Early, gradual return to school supports recovery better than prolonged rest."),
    ("h2", "Returning to learn"),
    ("p", "After one or two days of relative rest, students can return to school with temporary adjustments, such as shorter days, rest breaks and postponed tests. Symptoms may rise slightly with activity; this is acceptable if they settle within an hour."),
    ("ul", ["Share a written return-to-school plan with the family and the school.",
            "Remove adjustments step by step as symptoms resolve.",
            "Refer students whose symptoms persist beyond four weeks to an interdisciplinary concussion service.",
            "Do not allow return to contact sport until full return to learning without symptoms."]),
    ("h2", "Role of the physician"),
    ("p", "Physicians should confirm the diagnosis, screen for red flags that need imaging, and review the student regularly until recovery. Clear communication with teachers helps schools apply adjustments consistently."),
    ("h2", "Acknowledgements"),
    ("p", "Reviewed by the Healthy Active Living and Sports Medicine Committee."),
    CPS_DISCLAIMER,
])
# A landing page for a PDF technical report: too short once cleaned.
cps_statement("sleep-technical-report", "Sleep duration in school-aged children: Technical report", "Technical report",
              "Posted: Feb 12, 2024", [
    ("h3", "Principal author(s)"), ("p", "Fixture Author"),
    ("p", "<a href=\"/uploads/documents/sleep-technical-report.pdf\">Technical report PDF</a>"),
])
page(f"{CPS}/robots.txt", robots("cps.ca"))


# -- Drugs.com (www.drugs.com): dosage index, letter pages, dosage guides inside #content ----------------

DRUGS = "sites/www.drugs.com"
DRUGS_MENU = {
    "Drugs A-Z": [f"Drugs starting with {letter.upper()}" for letter in "abcdefghijklmnopqrstuvwxyz"],
    "Tools": ["Pill identifier", "Interactions checker", "Compare drugs", "My Med List", "Symptom checker"],
    "Professionals": ["Drug monographs", "FDA alerts", "Clinical trials", "New drug approvals", "Pipeline"],
    "News": ["Medical news", "FDA approvals", "Drug shortages", "Consumer updates"],
}


def drugs_chrome(title: str, content: str, path: str, sidebar: str = "") -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="canonical" href="https://www.drugs.com{path}">
<link rel="stylesheet" href="/css/ddc.min.css?v=5.8.2">
{data_layer({"ddc": {"pageType": "dosage", "path": path, "adUnits": [f"/ddc/dosage/slot{n}" for n in range(1, 9)],
                     "experiments": {"newNav": "B", "adRefresh": "off"}}})}
{consent_config("www.drugs.com")}
</head>
<body class="ddc-page">
<div id="ddc-cookie-banner" class="ddc-cookie"><p>Cookies on this site pay for free content through ads and tell us which pages are read.</p><button class="ddc-btn">Accept</button><a href="/support/privacy.html">Learn more</a></div>
<header class="ddc-header"><a class="ddc-logo" href="/">Drugs.com</a>
<form class="ddc-search" action="/search.php"><input name="searchterm" placeholder="Search drugs, conditions"><button>Search</button></form>
<nav class="ddc-nav">
{menu(DRUGS_MENU, "/alpha", "ddc-nav")}
</nav></header>
<div id="container" class="ddc-container">
<div id="content" class="ddc-main-content">
{content}
</div>
<aside id="sidebar" class="ddc-sidebar">{sidebar}<div class="ddc-ad ddc-ad--rail">Advertisement</div></aside>
</div>
<footer class="ddc-footer"><ul>{link_items(["About Drugs.com", "Advertising policy", "Attribution and citations", "Contact us", "Privacy policy", "Terms of use", "Editorial policy"], "/support")}</ul>
<p>A fixture copy of a drug information site; all text here is invented for tests.</p>
<p>Copyright &copy; 2000-2024 Drugs.com. All rights reserved.</p></footer>
{script("window.ddcAds=window.ddcAds||{queue:[]};window.ddcAds.queue.push(function(){ddcAds.display('slot1');});")}
</body>
</html>
"""


DRUGS_LETTERS = {"a": [("amoxicillin", "Amoxicillin"), ("atenolol-discontinued", "Atenolol oral solution")],
                 "l": [("lisinopril", "Lisinopril")], "m": [("metformin", "Metformin")]}
letters = "".join(f'<li><a href="/dosage-{c}.html">{c.upper()}</a></li>' if c in DRUGS_LETTERS
                  else f'<li><span class="ddc-disabled">{c.upper()}</span></li>' for c in "abcdefghijklmnopqrstuvwxyz")
page(f"{DRUGS}/dosage/index.html", drugs_chrome("Drug Dosage Guide - Drugs.com", f"""
<h1>Drug Dosage</h1>
<p>These dosage guides summarise the labelled doses of each medicine. They are a reference for readers, not a prescription: dose changes belong with the prescriber.</p>
<h2>Browse dosage guides by letter</h2>
<ul class="ddc-paging ddc-paging-alpha">{letters}</ul>
<h2>More about dosage and administration</h2>
<p>A dosage guide lists the starting dose, how it is adjusted and the largest dose for each use of a medicine, with changes for children and for reduced kidney or liver function.</p>
""", "/dosage/"))
for letter, entries in DRUGS_LETTERS.items():
    items = "".join(f'<li><a href="/dosage/{s}.html">{esc(name)}</a> <a class="ddc-secondary" href="/mtm/{s}.html">(patient information)</a></li>'
                    for s, name in entries)
    page(f"{DRUGS}/dosage-{letter}.html", drugs_chrome(f"Dosage guides: {letter.upper()} - Drugs.com", f"""
<nav class="ddc-breadcrumbs"><a href="/">Home</a> &gt; <a href="/dosage/">Dosage</a> &gt; {letter.upper()}</nav>
<h1>Dosage guides: {letter.upper()}</h1>
<ul class="ddc-paging ddc-paging-alpha">{letters}</ul>
<ul class="ddc-list-column-2">{items}</ul>
""", f"/dosage-{letter}.html"))


def drugs_dosage(slug_: str, name: str, strengths: str, sections: list[tuple]) -> None:
    path = f"/dosage/{slug_}.html"
    content = f"""<nav class="ddc-breadcrumbs"><a href="/">Home</a> &gt; <a href="/dosage/">Dosage</a> &gt; {esc(name)}</nav>
<h1>{esc(name)} Dosage</h1>
<p class="ddc-byline">Medically reviewed by Fixture Reviewer, PharmD. Last updated on Apr 2, 2024.</p>
<div class="ddc-print-page"><a href="#">Print page</a> <a href="#">My Meds</a></div>
<p><b>Applies to the following strengths:</b> {strengths}</p>
<div class="ddc-ad ddc-ad--inline">Advertisement</div>
{blocks(sections)}
<div class="ddc-ad ddc-ad--inline">Advertisement</div>
<h2>More about {name.lower()}</h2>
<ul class="more-resources-list">{link_items(["Check interactions", "Compare alternatives", "Pricing and coupons", "Reviews", "Side effects", "Pregnancy warnings"], f"/{slug_}")}</ul>
<h2>Related/similar drugs</h2>
<ul>{link_items(["Drug one", "Drug two", "Drug three"], "/mtm")}</ul>
<h2>Frequently asked questions</h2>
<ul><li><a href="/medical-answers/{slug_}-faq">What should I avoid while taking {name.lower()}?</a></li></ul>
<h2>Further information</h2>
<p>Always consult your healthcare provider before acting on the information on this page.</p>
<p class="ddc-disclaimer">Medical Disclaimer</p>"""
    page(f"{DRUGS}{path}", drugs_chrome(f"{name} Dosage Guide + Max Dose, Adjustments - Drugs.com", content, path,
                                        '<div class="ddc-related"><h3>Popular dosage guides</h3><ul>'
                                        + link_items(["Ibuprofen", "Prednisone", "Gabapentin"], "/dosage") + "</ul></div>"))


drugs_dosage("amoxicillin", "Amoxicillin", "250 mg; 500 mg; 875 mg; 125 mg/5 mL; 250 mg/5 mL", [
    ("h2", "Usual Adult Dose for Otitis Media"),
    ("p", "500 mg orally every 12 hours or 250 mg orally every 8 hours for mild to moderate infection; 875 mg orally every 12 hours or 500 mg orally every 8 hours for severe infection."),
    ("h2", "Usual Adult Dose for Pneumonia"),
    ("p", "875 mg orally every 12 hours or 500 mg orally every 8 hours."),
    ("p", "Duration of therapy: at least five days, continuing until the patient has been afebrile and stable for 48 hours."),
    ("h2", "Usual Pediatric Dose for Otitis Media"),
    ("p", "Age 3 months and older: 80 to 90 mg/kg/day orally in two divided doses for 5 to 10 days, depending on age and severity. Maximum: the usual adult dose."),
    ("h2", "Renal Dose Adjustments"),
    ("ul", ["CrCl 10 to 30 mL/min: 250 to 500 mg orally every 12 hours.", "CrCl less than 10 mL/min: 250 to 500 mg orally every 24 hours.",
            "Patients with CrCl less than 30 mL/min should not receive the 875 mg tablet."]),
    ("h2", "Liver Dose Adjustments"),
    ("p", "Data not available; use with caution and monitor liver function in patients with hepatic impairment."),
    ("h2", "Dialysis"),
    ("p", "Hemodialysis: 250 to 500 mg orally every 24 hours, with an additional dose during and at the end of dialysis."),
    ("h2", "Other Comments"),
    ("p", "Administration advice: may be taken with or without food; shake the suspension well before each dose."),
])
drugs_dosage("lisinopril", "Lisinopril", "2.5 mg; 5 mg; 10 mg; 20 mg; 40 mg; 1 mg/mL", [
    ("h2", "Usual Adult Dose for Hypertension"),
    ("p", "Initial dose: 10 mg orally once a day. Maintenance dose: 20 to 40 mg orally once a day. Doses up to 80 mg have been used but do not appear to give a greater effect."),
    ("p", "Patients taking diuretics: initial dose 5 mg orally once a day, with close observation for hypotension."),
    ("h2", "Usual Adult Dose for Heart Failure"),
    ("p", "Initial dose: 2.5 to 5 mg orally once a day, increased in steps of up to 10 mg no more often than every two weeks to the highest tolerated dose, up to 40 mg once a day."),
    ("h2", "Usual Pediatric Dose for Hypertension"),
    ("p", "6 years or older: initial dose 0.07 mg/kg orally once a day, up to 5 mg. Doses above 0.61 mg/kg or 40 mg have not been studied."),
    ("h2", "Renal Dose Adjustments"),
    ("ul", ["CrCl 10 to 30 mL/min: initial dose 5 mg orally once a day for hypertension.", "CrCl less than 10 mL/min or dialysis: initial dose 2.5 mg orally once a day."]),
    ("h2", "Precautions"),
    ("p", "Contraindicated in patients with a history of angioedema and in combination with aliskiren in patients with diabetes. Stop as soon as pregnancy is detected."),
])
drugs_dosage("metformin", "Metformin", "500 mg; 850 mg; 1000 mg; 500 mg extended-release; 750 mg extended-release", [
    ("h2", "Usual Adult Dose for Diabetes Type 2"),
    ("p", "Immediate-release: initial dose 500 mg orally twice a day or 850 mg orally once a day with meals. Increase by 500 mg weekly or 850 mg every two weeks as tolerated. Maximum dose: 2550 mg a day in divided doses."),
    ("p", "Extended-release: initial dose 500 to 1000 mg orally once a day with the evening meal. Maximum dose: 2000 mg a day."),
    ("h2", "Usual Pediatric Dose for Diabetes Type 2"),
    ("p", "10 years or older, immediate-release: initial dose 500 mg orally twice a day; increase by 500 mg weekly up to 2000 mg a day in divided doses."),
    ("h2", "Renal Dose Adjustments"),
    ("ul", ["eGFR 45 mL/min/1.73 m2 or more: no adjustment recommended.", "eGFR 30 to 45: do not start metformin; assess benefit and risk in patients already taking it.",
            "eGFR less than 30: contraindicated."]),
    ("h2", "Liver Dose Adjustments"),
    ("p", "Avoid use in patients with hepatic impairment, because of the risk of lactic acidosis."),
    ("h2", "Precautions"),
    ("p", "Stop metformin before or at the time of iodinated contrast imaging in patients with an eGFR between 30 and 60, and restart after 48 hours if renal function is stable."),
])
page(f"{DRUGS}/robots.txt", robots("www.drugs.com", "Disallow: /api/\n"))


# -- GuidelineCentral (www.guidelinecentral.com): summary pages /guideline/<id>/ from a sitemap index ---

GC = "sites/www.guidelinecentral.com"
GC_MENU = {
    "Guidelines": ["Cardiology", "Endocrinology", "Gastroenterology", "Infectious disease", "Oncology", "Pulmonology",
                   "Neurology", "Pediatrics", "Psychiatry", "Rheumatology", "Urology", "Women's health"],
    "Pocket guides": ["Shop all guides", "New releases", "Bundles", "Institutional licences"],
    "Drugs": ["Drug search", "Drug classes", "Dosing calculators"],
    "Resources": ["Newsletters", "Mobile app", "Continuing education", "Quick-reference tools", "Webinars"],
}


def gc_page(number: int, title: str, society: str, summary: str) -> None:
    path = f"/guideline/{number}/"
    content = f"""<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<title>{esc(title)} | Guideline Central</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="canonical" href="https://www.guidelinecentral.com{path}">
<meta property="og:title" content="{esc(title)}">
<link rel="stylesheet" href="/wp-content/themes/gc/style.min.css?ver=4.2">
{data_layer({"content": {"type": "guideline-summary", "id": number, "society": society, "access": "free"},
             "visitor": {"loggedIn": False}})}
{consent_config("www.guidelinecentral.com")}
</head>
<body class="guideline-template-default single single-guideline">
<div class="cookie-consent"><p>This website stores cookies for sign-in and statistics. Press OK to continue with cookies enabled.</p><button>OK</button></div>
<header class="site-header"><a href="/" class="custom-logo-link">Guideline Central</a>
<nav class="main-navigation">
{menu(GC_MENU, "/guidelines", "menu")}
</nav>
<div class="header-actions"><a href="/login/">Log in</a> <a href="/register/">Sign up free</a></div></header>
<main class="site-main">
<nav class="breadcrumbs"><a href="/">Home</a> &raquo; <a href="/guidelines/">Guidelines</a> &raquo; {esc(society)}</nav>
<div class="guideline-title text-center"><h1>{esc(title)}</h1>
<p class="guideline-meta">{esc(society)} &middot; Published 2023</p></div>
<div class="guideline-actions"><a href="#" class="btn">Save</a> <a href="#" class="btn">Share</a> <a href="#" class="btn">Print</a></div>
<div class="row"><div class="col-md-8">
<div id="summary-nav" class="summary-content">
{summary}
</div></div>
<aside class="col-md-4 sidebar"><div class="widget related-guidelines"><h3>Related guidelines</h3><ul>{link_items(["Guideline one", "Guideline two", "Guideline three"], "/guideline")}</ul></div>
<div class="widget app-promo"><h3>Get the app</h3><p>Download the Guideline Central app for quick access to thousands of guideline summaries at the point of care.</p></div>
<div class="widget newsletter"><h3>Newsletter</h3><form><input type="email" placeholder="Email"><button>Subscribe</button></form></div></aside></div>
</main>
<footer class="site-footer"><ul>{link_items(["About", "Contact", "Privacy policy", "Terms of use", "Advertise", "Publish with us"], "")}</ul>
<p>&copy; 2024 Guideline Central. All rights reserved.</p></footer>
{script("jQuery(function($){$('.cookie-consent button').on('click',function(){$(this).parent().hide();});});")}
</body>
</html>
"""
    page(f"{GC}{path}index.html", content)


def gc_section(anchor: str, heading: str, items: list[tuple]) -> str:
    return f'<section id="section-{anchor}" class="summary-section"><h2>{heading}</h2>\n{blocks(items)}\n</section>'


GC_TAIL = (gc_section("grading", "Recommendation Grading", [("table", [["Grade", "Meaning"], ["Strong", "Benefits clearly outweigh harms"], ["Conditional", "Benefits probably outweigh harms"]])])
           + gc_section("citation", "Source Citation", [("p", "Fixture Society. Guideline summary source. J Fixture Med. 2023;1:1-20.")])
           + gc_section("disclaimer", "Disclaimer", [("p", "This summary is for educational purposes and does not replace the full guideline.")]))

gc_page(30211, "Management of Heart Failure with Reduced Ejection Fraction", "Fixture Heart Society",
        gc_section("objectives", "Document Objectives", [("p", "To provide evidence-based recommendations for the pharmacologic management of adults with chronic heart failure with reduced ejection fraction.")])
        + gc_section("recommendations", "Key Recommendations", [
            ("ul", ["Start all four foundational drug classes early: an angiotensin receptor-neprilysin inhibitor or ACE inhibitor, an evidence-based beta-blocker, a mineralocorticoid receptor antagonist and an SGLT2 inhibitor.",
                    "Titrate each drug to the target or highest tolerated dose, checking potassium and renal function one to two weeks after each change.",
                    "Use loop diuretics at the lowest dose that keeps the patient free of congestion.",
                    "Refer patients with an ejection fraction of 35 per cent or less despite three months of treatment for assessment for an implantable defibrillator."])])
        + gc_section("monitoring", "Monitoring", [("p", "Review symptoms, weight, blood pressure, heart rate and laboratory results at every titration visit, and offer a structured exercise programme once the patient is stable.")])
        + GC_TAIL)
gc_page(30342, "Diagnosis and Management of Gout", "Fixture Rheumatology Association",
        gc_section("objectives", "Document Objectives", [("p", "To guide clinicians in the diagnosis of gout and in urate-lowering therapy for adults with recurrent flares.")])
        + gc_section("recommendations", "Key Recommendations", [
            ("ul", ["Confirm the diagnosis by identifying monosodium urate crystals in synovial fluid whenever feasible.",
                    "Offer urate-lowering therapy to patients with two or more flares a year, tophi or radiographic damage.",
                    "Start allopurinol at 100 mg daily or less and increase gradually to reach a serum urate below 6 mg/dL.",
                    "Give anti-inflammatory prophylaxis for three to six months when starting urate-lowering therapy.",
                    "Treat acute flares with colchicine, a non-steroidal anti-inflammatory drug or a glucocorticoid, chosen by comorbidity."])])
        + gc_section("lifestyle", "Lifestyle Advice", [("p", "Advise limiting alcohol, purine-rich meats and drinks sweetened with fructose, and review medicines that raise serum urate, such as thiazide diuretics, when alternatives exist.")])
        + GC_TAIL)
gc_page(30417, "Screening for Colorectal Cancer in Average-Risk Adults", "Fixture Gastroenterology College",
        gc_section("objectives", "Document Objectives", [("p", "To recommend screening ages, tests and intervals for colorectal cancer in adults at average risk.")])
        + gc_section("recommendations", "Key Recommendations", [
            ("ul", ["Begin screening at age 45 and continue to age 75; decide individually between 76 and 85.",
                    "Offer colonoscopy every ten years or an annual faecal immunochemical test as first-tier options.",
                    "Follow every abnormal non-invasive test with a timely colonoscopy, ideally within six months.",
                    "Do not screen adults older than 85 years."]),
            ("p", "Shared decision-making should take account of patient preference, because the test a patient will complete is the best test for that patient.")])
        + gc_section("quality", "Quality of Screening", [("p", "Colonoscopy programmes should monitor adenoma detection rates and bowel preparation quality, and invite patients again when a screening interval is due.")])
        + GC_TAIL)
# A members-only summary: the page shows only a sign-in prompt.
gc_page(29990, "Management of Chronic Obstructive Pulmonary Disease", "Fixture Thoracic Society",
        '<div class="paywall"><h2>Sign in to view this summary</h2><p>Create a free account to continue.</p></div>')

page(f"{GC}/sitemap.xml", sitemap_index(["https://www.guidelinecentral.com/guideline-sitemap1.xml.gz",
                                         "https://www.guidelinecentral.com/guideline-sitemap2.xml.gz",
                                         "https://www.guidelinecentral.com/page-sitemap.xml"]))
page(f"{GC}/guideline-sitemap1.xml.gz", gzipped(urlset(["https://www.guidelinecentral.com/guideline/30211/",
                                                        "https://www.guidelinecentral.com/guideline/29990/",
                                                        "https://www.guidelinecentral.com/guideline/30342/"])))
page(f"{GC}/guideline-sitemap2.xml.gz", gzipped(urlset(["https://www.guidelinecentral.com/guideline/30417/",
                                                        "https://www.guidelinecentral.com/guideline/30211/"])))
page(f"{GC}/page-sitemap.xml", urlset(["https://www.guidelinecentral.com/guidelines/",
                                       "https://www.guidelinecentral.com/guidelines/fixture-heart-society/",
                                       "https://www.guidelinecentral.com/pocket-guides/"]))
page(f"{GC}/robots.txt", robots("www.guidelinecentral.com", "Disallow: /wp-admin/\nSitemap: https://www.guidelinecentral.com/sitemap.xml\n"))


# -- IDSA (www.idsociety.org): the all-practice-guidelines A-Z list and guideline pages; a redesign ------

IDSA_MENU = {
    "Practice Guidelines": ["All practice guidelines", "Guidelines in development", "Guideline development process",
                            "Implementation tools", "Clinical pathways"],
    "Clinical Affairs": ["Antimicrobial stewardship", "Infection prevention", "Vaccines", "Telehealth"],
    "Public Health": ["COVID-19", "Influenza", "HIV", "Antimicrobial resistance", "Climate and health"],
    "Science and Research": ["Journals", "Research funding", "Science speaks"],
    "Professional Development": ["IDWeek", "Board review", "Fellowship training", "Careers"],
}

IDSA_GUIDELINES = [  # slug, title, year, statuses
    ("uncomplicated-cystitis", "Uncomplicated Cystitis and Pyelonephritis in Women", 2024, ("Current",)),
    ("management-of-cellulitis", "Skin and Soft Tissue Infections", 2023, ("Current", "Endorsed")),
    ("clostridioides-difficile-2019", "Clostridioides difficile Infection in Adults", 2019, ("Archived",)),
    ("diabetic-foot-infections-update", "Diabetic Foot Infections", 2025, ("In Development",)),
]
IDSA_TEXT = {
    "uncomplicated-cystitis": [
        ("h2", "Introduction"),
        ("p", "Acute uncomplicated cystitis is among the most common infections treated in outpatient practice. This update addresses the choice of empiric antimicrobial therapy in otherwise healthy, non-pregnant women, taking account of rising resistance and of collateral damage to the microbiota."),
        ("h2", "Recommendations"),
        ("ul", ["Nitrofurantoin for five days is an appropriate first choice for acute cystitis when renal function is adequate.",
                "Trimethoprim-sulfamethoxazole for three days is appropriate where local resistance is below 20 per cent.",
                "Fosfomycin as a single dose is an alternative with somewhat lower efficacy.",
                "Reserve fluoroquinolones for pyelonephritis or for cystitis when no other agent is suitable.",
                "Obtain a urine culture with susceptibility testing in all women with suspected pyelonephritis."]),
        ("h2", "Pyelonephritis"),
        ("p", "Women with pyelonephritis who can take oral medicines may be treated as outpatients. An initial parenteral dose of a long-acting agent is reasonable while culture results are awaited."),
    ],
    "management-of-cellulitis": [
        ("h2", "Introduction"),
        ("p", "Skin and soft tissue infections range from superficial cellulitis to necrotizing infections that need urgent surgery. This guideline focuses on the outpatient management of non-purulent cellulitis and of simple abscesses."),
        ("h2", "Recommendations"),
        ("ul", ["Treat typical non-purulent cellulitis with an agent active against streptococci, such as cephalexin, for five days, extending if there is no improvement.",
                "Incise and drain simple abscesses; add an antibiotic active against MRSA when systemic signs are present.",
                "Elevate the affected area and treat predisposing conditions such as tinea pedis and oedema.",
                "Seek surgical review without delay when pain is out of proportion to the findings or the skin shows bullae or necrosis."]),
        ("h2", "Recurrent cellulitis"),
        ("p", "Patients with three or four episodes a year despite treatment of predisposing factors may benefit from prophylactic penicillin or erythromycin."),
    ],
    "clostridioides-difficile-2019": [
        ("h2", "Introduction"),
        ("p", "This archived guideline addressed the diagnosis and treatment of Clostridioides difficile infection in adults. It is kept for reference; see the current guideline for updated recommendations."),
        ("h2", "Recommendations"),
        ("ul", ["Test only patients with unexplained new-onset diarrhoea of three or more unformed stools in 24 hours.",
                "Treat an initial episode with oral vancomycin for ten days or fidaxomicin for ten days.",
                "Treat a first recurrence with fidaxomicin or a prolonged tapered and pulsed course of oral vancomycin.",
                "Consider faecal microbiota transplantation after the second recurrence.",
                "Stop unnecessary antibiotics and proton pump inhibitors whenever possible."]),
        ("h2", "Infection prevention"),
        ("p", "Place patients with suspected infection in contact precautions and clean rooms with a sporicidal agent, since alcohol hand rubs do not kill the spores."),
    ],
    "diabetic-foot-infections-update": [
        ("p", "This guideline is in development; the panel will post its recommendations when the review is complete."),
    ],
}


def idsa_chrome(title: str, body: str, path: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="canonical" href="https://www.idsociety.org{path}">
<link rel="stylesheet" href="/dist/css/main.css?v=8.1">
{data_layer({"page": {"path": path, "section": "practice-guideline", "cms": "sitecore"}})}
{consent_config("www.idsociety.org")}
</head>
<body>
<div id="cookie-bar" class="cookie-bar"><p>This site uses cookies for sign-in and visit statistics; see the cookie policy for details.</p><button class="cookie-bar__accept">Accept</button></div>
<header class="header"><a class="header__logo" href="/">Infectious Diseases Society of America</a>
<div class="header__utility"><a href="/login">Sign in</a> <a href="/membership">Join</a> <a href="/donate">Donate</a></div>
<nav class="header__nav">
{menu(IDSA_MENU, "/programs", "nav")}
</nav></header>
{body}
<footer class="footer"><ul>{link_items(["About IDSA", "Contact us", "Careers", "Privacy policy", "Terms of use", "Media"], "/about")}</ul>
<p>&copy; 2024 Infectious Diseases Society of America. 4040 Wilson Blvd., Arlington, VA.</p></footer>
{script("(function(){var b=document.querySelector('.cookie-bar__accept');if(b){b.onclick=function(){document.getElementById('cookie-bar').remove();};}})();")}
</body>
</html>
"""


def idsa_site(root: str, redesigned: bool = False) -> None:
    """The IDSA site under `root`; `redesigned`: the listing and guideline pages use new markup (the
    spec's link_selector and content_selector find nothing)."""
    host = f"{root}/www.idsociety.org"
    items = []
    for slug_, title, year, statuses in IDSA_GUIDELINES:
        dots = "".join(f'<li class="category-dot">{s}</li>' for s in statuses)
        if redesigned:
            items.append(f'<div class="guideline-card"><a class="guideline-card__title" href="/practice-guideline/{slug_}/">{esc(title)}</a>'
                         f'<span class="guideline-card__meta">{year} &middot; {", ".join(statuses)}</span></div>')
        else:
            items.append(f'<li><ul class="list-pages__categories">{dots}</ul>'
                         f'<a class="list-pages__link" href="/practice-guideline/{slug_}/">{esc(title)}</a>'
                         f'<span class="list-pages__year">{year}</span></li>')
    if redesigned:
        listing = f'<main class="guideline-index"><h1>Practice Guidelines</h1><div class="guideline-grid">{"".join(items)}</div></main>'
    else:
        listing = f"""<div class="standardpage"><div class="standardpage-col-left">
<nav class="breadcrumb"><a href="/">Home</a> / Practice Guidelines</nav>
<h1>All Practice Guidelines</h1>
<div class="filters"><button>Current</button><button>Archived</button><button>Endorsed</button><button>In Development</button></div>
<div class="alpha-listing"><ul class="list-pages">{"".join(items)}</ul></div>
</div><div class="standardpage-col-right"><h3>Related</h3><ul><li><a href="/practice-guideline/guideline-development-process/">How IDSA develops guidelines</a></li></ul></div></div>"""
    page(f"{host}/practice-guideline/all-practice-guidelines/index.html",
         idsa_chrome("All Practice Guidelines", listing, "/practice-guideline/all-practice-guidelines/"))
    for slug_, title, year, statuses in IDSA_GUIDELINES:
        status = "".join(f'<span class="status">{s.upper()}</span>' for s in statuses)
        toc = "".join(f'<li><a href="#{slug(t)}">{esc(t)}</a></li>' for k, t in IDSA_TEXT[slug_] if k == "h2")
        body_text = blocks(IDSA_TEXT[slug_])
        if redesigned:
            body = f"""<main class="guideline-detail"><article class="guideline-detail__body">
<h1>{esc(title)}</h1><p class="guideline-detail__meta">Published {year}</p>
{body_text}
</article><aside class="guideline-detail__aside"><h3>Download</h3><p><a href="https://academic.oup.com/cid/{slug_}.pdf">Download PDF</a></p></aside></main>"""
        else:
            body = f"""<div class="standardpage"><div class="standardpage-col-left">
<nav class="breadcrumb"><a href="/">Home</a> / <a href="/practice-guideline/all-practice-guidelines/">Practice Guidelines</a></nav>
<div class="idsaPracticeGuidelinePage">
<section class="status-section">{status}</section>
<p><a href="https://academic.oup.com/cid/{slug_}.pdf">Download PDF</a></p>
<h1>{esc(title)}</h1>
<p class="published">Published: {year}</p>
<div class="table-of-contents"><h3>Table of Contents</h3><ul>{toc}</ul></div>
<div class="share"><a href="#">Share</a> <a href="#">Email</a></div>
{body_text}
<p><a href="#top">Back to top</a></p>
<h2>Notes</h2><p>Guidelines are not intended to take the place of physician judgment.</p>
</div></div>
<div class="standardpage-col-right"><div class="view-all-guidance"><a href="/practice-guideline/all-practice-guidelines/">View all guidelines</a></div>
<h3>Related guidelines</h3><ul>{link_items(["Antimicrobial stewardship", "Vaccines for adults"], "/programs")}</ul></div></div>"""
        page(f"{host}/practice-guideline/{slug_}/index.html", idsa_chrome(f"{title} | IDSA", body, f"/practice-guideline/{slug_}/"))
    page(f"{host}/robots.txt", robots("www.idsociety.org"))


idsa_site("sites")
idsa_site("site_changes/idsa", redesigned=True)


# -- Mayo Clinic (www.mayoclinic.org): A-Z index by letter, condition pages in two templates ---------------

MAYO = "sites/www.mayoclinic.org"
MAYO_MENU = {
    "Care at Mayo Clinic": ["Patient-centered care", "About Mayo Clinic", "Request an appointment", "Find a doctor",
                            "Locations", "Clinical trials", "Patient and visitor guide", "International services"],
    "Health Library": ["Diseases & Conditions", "Symptoms", "Tests & Procedures", "Drugs & Supplements",
                       "Healthy Lifestyle", "Books & Subscriptions"],
    "For Medical Professionals": ["Provider relations", "Online services for referring physicians", "Video center",
                                  "Publications", "Continuing medical education"],
    "Research & Education": ["Research faculty", "Laboratories", "Mayo Clinic College of Medicine and Science",
                             "Graduate school", "Residencies and fellowships"],
    "Giving to Mayo Clinic": ["Give now", "Giving to Mayo Clinic", "Frequently asked questions", "Contact us"],
}
MAYO_INDEX = {  # letter -> (title, slug, id, see-also alias or None)
    "A": [("Asthma", "asthma", 20369653, None), ("Acute sinusitis", "acute-sinusitis", 20351671, None)],
    "B": [("Bronchiolitis", "bronchiolitis", 20351565, None), ("Bronchitis, acute", "bronchiolitis", 20351565, "see")],
    "C": [("Cellulitis", "cellulitis", 20370762, None), ("Chilblains", "chilblains-retired", 20351097, None),
          ("Croup", "croup", 20350348, None)],
}


def mayo_chrome(title: str, body: str, path: str, template_class: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="Description" content="Learn about symptoms, causes and treatment.">
<meta name="PublishDate" content="2024-03-12">
<link rel="canonical" href="https://www.mayoclinic.org{path}">
<link rel="stylesheet" href="/etc.clientlibs/mayoclinic/clientlibs/site.min.css">
{data_layer({"pageInfo": {"contentType": "condition", "path": path, "adZone": "diseases-conditions",
                           "keywords": [w for w in title.lower().split() if len(w) > 3]}})}
{consent_config("www.mayoclinic.org")}
</head>
<body class="{template_class}">
<div class="cmp-cookie-banner"><p>This site sets cookies for site functions, measurement and advertising. Accept them or read the privacy policy.</p><button>Accept</button> <a href="/about-this-site/privacy-policy">Privacy policy</a></div>
<header class="cmp-header"><a class="cmp-header__logo" href="/">Mayo Clinic</a>
<a class="cmp-button" href="/appointments">Request an appointment</a>
<nav class="cmp-navigation">
{menu(MAYO_MENU, "", "cmp-navigation")}
</nav></header>
{body}
<footer class="cmp-footer"><ul>{link_items(["About this site", "Contact us", "Locations", "Health information policy", "Media requests", "Privacy policy", "Notice of privacy practices", "Terms and conditions"], "/about-this-site")}</ul>
<p>Mayo Clinic is a nonprofit organization. This fixture copy holds invented text. &copy; 1998-2024 Mayo Foundation for Medical Education and Research (MFMER). All rights reserved.</p></footer>
{script("window.mcAds=window.mcAds||[];window.mcAds.push({slot:'right-rail',sizes:[[300,250],[300,600]]});")}
</body>
</html>
"""


for letter, entries in MAYO_INDEX.items():
    results = "".join(
        (f'<div class="cmp-result-name"><a class="cmp-results-with-primary-name__see-link" href="/diseases-conditions/{s}/symptoms-causes/syc-{i}">'
         f'{esc(t)}</a> <span>See {esc(s.title())}</span></div>') if alias else
        (f'<div class="cmp-result-name"><div class="cmp-link" data-testid="cmp-button">'
         f'<a class="cmp-result-name__link" href="/diseases-conditions/{s}/symptoms-causes/syc-{i}">{esc(t)}</a></div></div>')
        for t, s, i, alias in entries)
    alphabet = "".join(f'<li><a href="/diseases-conditions/index?letter={c}">{c}</a></li>' for c in "ABCDEFGHIJKLMNOPRSTUVWXYZ#")
    body = f"""<main class="cmp-main"><h1>Diseases &amp; Conditions</h1>
<p>Find diseases and conditions by first letter.</p>
<ul class="cmp-alphabet-facet">{alphabet}</ul>
<div class="cmp-back-to-top-container"><div id="cmp-skip-to-main__content" class="cmp-azresults cmp-azresults-from-model">{results}</div></div>
<aside class="cmp-related"><h2>Featured</h2><ul><li><a href="/diseases-conditions/asthma/diagnosis-treatment/drc-20369660">Asthma treatment options</a></li></ul></aside>
</main>"""
    page(f"{MAYO}/diseases-conditions/index%3Fletter={letter}",
         mayo_chrome(f"Diseases & conditions - {letter} - Mayo Clinic", body, f"/diseases-conditions/index?letter={letter}", "azpage"))

MAYO_TEXT = {
    "asthma": [
        ("h2", "Overview"),
        ("p", "In asthma the breathing tubes of the lungs react to triggers by tightening, swelling and filling with sticky mucus. Air then moves in and out with difficulty, which brings on cough, wheeze and a tight chest."),
        ("p", "Attacks range from a mild nuisance to an emergency. There is no cure, but with the right inhalers and a written action plan most people keep their symptoms under control and lead active lives."),
        ("h2", "Symptoms"),
        ("ul", ["Breathlessness, especially at night or with exercise", "A feeling of pressure across the chest", "A high-pitched wheeze on breathing out", "A cough that wakes you up", "Symptoms that flare with colds, smoke or pollen"]),
        ("h3", "When to see a doctor"),
        ("p", "Get emergency help if breathing gets harder fast or your reliever inhaler does not bring relief within minutes. Book a visit if you often wheeze or cough at night, or if you need your reliever more than twice a week."),
        ("h2", "Causes"),
        ("p", "Asthma runs in families and is more common in people with eczema or hay fever. Things that set off symptoms differ from person to person: dust mites, pet dander, mould, viral infections, cold air, exercise and tobacco smoke are frequent ones."),
    ],
    "acute-sinusitis": [
        ("h2", "Overview"),
        ("p", "Sinusitis is swelling of the lining of the air spaces around the nose. When the lining swells, the small drainage channels close, mucus collects and the face feels full and sore."),
        ("h2", "Symptoms"),
        ("ul", ["Coloured discharge from the nose or down the throat", "A blocked nose and a reduced sense of smell", "Pressure or aching over the cheeks, forehead or between the eyes", "Headache, ear fullness and tiredness"]),
        ("h3", "When to see a doctor"),
        ("p", "Home care is usually enough. See a clinician if symptoms go on for more than ten days, come back after getting better, or come with a high temperature, swelling around the eye or a stiff neck."),
        ("h2", "Causes"),
        ("p", "A cold virus starts most cases. Allergies, growths in the nose and a bent nasal septum make blockage of the sinus openings more likely."),
    ],
    "bronchiolitis": [
        ("h2", "Overview"),
        ("p", "Bronchiolitis is a chest infection of babies and toddlers in which a virus inflames the tiniest airways. The airways fill with mucus, so the child breathes fast and works hard to breathe. Most babies recover at home in one to two weeks."),
        ("h2", "Symptoms"),
        ("p", "It begins like a cold, with a runny nose, mild fever and cough. Over the next days breathing may become quick and noisy, with a wheeze, and the baby may tire during feeds."),
        ("h3", "When to see a doctor"),
        ("p", "Get urgent help if your baby pauses in breathing, sucks in the skin between the ribs with each breath, refuses feeds or has bluish lips."),
        ("h2", "Prevention"),
        ("p", "Handwashing, keeping sick visitors away from young babies, cleaning shared toys and a smoke-free home all lower the chance of infection."),
    ],
}


def mayo_condition(slug_: str, number: int, title: str) -> None:
    path = f"/diseases-conditions/{slug_}/symptoms-causes/syc-{number}"
    sections = "".join(f'<div class="cmp-text__rich-content cmp-dita-content">{blocks(MAYO_TEXT[slug_][i:i + 2])}</div>'
                       for i in range(0, len(MAYO_TEXT[slug_]), 2))
    body = f"""<main class="cmp-main"><header class="cmp-page-header"><h1 id="page-title">{esc(title)}</h1>
<ul class="cmp-tabs"><li class="active"><a href="{path}">Symptoms &amp; causes</a></li><li><a href="/diseases-conditions/{slug_}/diagnosis-treatment/drc-{number + 7}">Diagnosis &amp; treatment</a></li><li><a href="/diseases-conditions/{slug_}/doctors-departments/ddc-{number + 9}">Doctors &amp; departments</a></li></ul></header>
<article class="cmp-article"><div class="aem-container cmp-aside-container">
<div class="container-child"><nav class="cmp-toc">On this page <a href="#overview">Overview</a> <a href="#symptoms">Symptoms</a> <a href="#causes">Causes</a></nav></div>
<div class="container-child">
{sections}
<div class="cmp-related-content cmp-related-content--inline"><h3>Products &amp; Services</h3><a href="https://order.store.mayoclinic.com/book">A Book: Mayo Clinic Family Health Book</a></div>
<form class="cmp-newsletter"><h2>Health tips by email</h2><p>Get a weekly message with new articles from the health library.</p><input type="email"><button>Subscribe</button></form>
</div>
<div class="container-child"><a class="cmp-button" href="/appointments">Request an appointment</a><div class="cmp-meet-mc-staff-button">By Mayo Clinic Staff</div>
<div class="cmp-references"><button>Show references</button><ol><li>Fixture reference one.</li></ol></div></div>
</div></article>
<aside class="cmp-ad cmp-ad--right-rail">Advertisement</aside></main>"""
    page(f"{MAYO}{path}", mayo_chrome(f"{title} - Symptoms and causes - Mayo Clinic", body, path, "consumerconditionpage"))


mayo_condition("asthma", 20369653, "Asthma")
mayo_condition("acute-sinusitis", 20351671, "Acute sinusitis")
mayo_condition("bronchiolitis", 20351565, "Bronchiolitis")

# Croup in the 2025 template: the article is a column of a column control
# (div.cmp-column-control__content-column > article[data-testid=cmp-article], no cmp-article class), its
# text in section[data-testid=cmp-section] blocks with no cmp-dita-content wrapper (the structure public
# scrapers of the current pages select, e.g. Umang-Bansal/healthbot's scraper.py).
croup_path = "/diseases-conditions/croup/symptoms-causes/syc-20350348"
croup_sections = "".join(f'<section data-testid="cmp-section" class="cmp-section">{blocks(part)}</section>' for part in (
    [("h2", "Overview"),
     ("p", "Croup is a viral infection of the voice box and windpipe of young children. The swollen airway below the vocal cords gives a cough that sounds like a seal's bark and a harsh noise on breathing in."),
     ("p", "Most children have a mild illness that settles at home within three to five days, and symptoms are usually worse at night.")],
    [("h2", "Symptoms"),
     ("ul", ["A loud, barking cough", "A hoarse voice", "A high-pitched sound when breathing in", "A runny nose and fever in the first days"]),
     ("h3", "When to see a doctor"),
     ("p", "Seek emergency care if your child struggles to breathe, drools or cannot swallow, looks pale or blue around the mouth, or is unusually sleepy.")],
    [("h2", "Causes"),
     ("p", "Parainfluenza viruses cause most cases; other respiratory viruses cause the rest. The viruses spread through coughs, sneezes and shared toys.")],
))
page(f"{MAYO}{croup_path}", mayo_chrome("Croup - Symptoms and causes - Mayo Clinic", f"""<main class="cmp-main">
<header class="cmp-page-header"><h1 id="page-title">Croup</h1>
<ul class="cmp-tabs"><li class="active"><a href="{croup_path}">Symptoms &amp; causes</a></li><li><a href="/diseases-conditions/croup/diagnosis-treatment/drc-20350354">Diagnosis &amp; treatment</a></li></ul></header>
<div class="cmp-column-control"><div class="container-child container-child cmp-column-control__content-column">
<article data-testid="cmp-article">
<nav class="cmp-toc">On this page <a href="#overview">Overview</a> <a href="#symptoms">Symptoms</a> <a href="#causes">Causes</a></nav>
{croup_sections}
<div class="cmp-related-content cmp-related-content--inline"><h3>Products &amp; Services</h3><a href="https://order.store.mayoclinic.com/book">A Book: Mayo Clinic Family Health Book</a></div>
<div class="cmp-meet-mc-staff-button">By Mayo Clinic Staff</div>
<div class="cmp-references"><button>Show references</button><ol><li>Fixture reference one.</li></ol></div>
</article></div>
<div class="container-child container-child cmp-column-control__side-column"><a class="cmp-button" href="/appointments">Request an appointment</a>
<form class="cmp-newsletter"><h2>Health tips by email</h2><p>Get a weekly message with new articles from the health library.</p><input type="email"><button>Subscribe</button></form></div>
</div>
<aside class="cmp-ad cmp-ad--right-rail">Advertisement</aside></main>""", croup_path, "consumerconditionpage"))

# Cellulitis still in the legacy template: article#main-content > div.row > div.content.
cellulitis_path = "/diseases-conditions/cellulitis/symptoms-causes/syc-20370762"
page(f"{MAYO}{cellulitis_path}", mayo_chrome("Cellulitis - Symptoms and causes - Mayo Clinic", f"""<div class="main">
<header><div class="row"><h1><a href="/diseases-conditions/cellulitis">Cellulitis</a></h1></div></header>
<article id="main-content"><div class="row"><div class="content">
<div class="thin-content-bar"><div class="print">Print</div></div>
<div>
{blocks([("h2", "Overview"),
         ("p", "Cellulitis is an infection of the deeper layers of the skin by bacteria. The skin turns red, hot, swollen and sore, most often on a lower leg, though any part of the body can be affected."),
         ("p", "Bacteria get in through a cut, a bite, cracked skin between the toes or a leg ulcer. Without antibiotics the infection can reach the lymph glands and the blood, which is dangerous."),
         ("h2", "Symptoms"),
         ("ul", ["Redness that spreads over hours to days", "Swollen, tender skin", "Skin that feels hot", "Fever and shivering", "Blisters or dimpled skin"]),
         ("h3", "When to see a doctor"),
         ("p", "Go to an emergency department if a red, painful area is spreading quickly or you have a fever with it. See a clinician the same day if a patch of skin is red, warm and getting bigger, even without fever.")])}
<div id="maincta" class="acces-list-container rc-list"><h3>Products &amp; Services</h3><p>Show more products from Mayo Clinic</p></div>
<div class="requestappt">Request an appointment</div>
<div class="thin-content-by">By Mayo Clinic Staff</div>
</div>
<div class="pubdate">March 12, 2024</div>
<div class="references"><button>Show references</button><div><ol><li>Fixture reference.</li></ol></div></div>
</div><div class="sidebar">Advertisement</div></div></article></div>""", cellulitis_path, "legacy"))
page(f"{MAYO}/robots.txt", robots("www.mayoclinic.org", "Disallow: /appointments\n"))


# -- RCH (www.rch.org.au): the clinical guideline A-Z index and guideline pages (widgetBody blocks) -------

RCH = "sites/www.rch.org.au"
RCH_INDEX = [  # title, slug, is an alias ("see ...")
    ("Bronchiolitis", "Bronchiolitis", False), ("Croup (laryngotracheobronchitis)", "Croup_laryngotracheobronchitis", False),
    ("Febrile child", "Febrile_child", False), ("Fever (see Febrile child)", "Febrile_child", True),
    ("Immigrant health resources", "Immigrant_health_resources", False), ("Otitis media", "Acute_otitis_media", False),
]
RCH_TEXT = {
    "Bronchiolitis": [
        ("h2", "Key points"),
        ("ul", ["Bronchiolitis is a clinical diagnosis; investigations are not routinely needed.",
                "Management is supportive: hydration and oxygen when saturation is persistently below 90 per cent.",
                "Salbutamol, adrenaline, steroids and antibiotics are not recommended."]),
        ("h2", "Assessment"),
        ("p", "Typical features in an infant under 12 months are a viral prodrome followed by cough, tachypnoea, recession and widespread crackles or wheeze. Symptoms peak on days two to three and resolve over seven to ten days."),
        ("table", [["Severity", "Features"], ["Mild", "Normal feeding, no oxygen need"], ["Severe", "Apnoea, poor feeding, marked recession"]]),
        ("h2", "Management"),
        ("ul", ["Offer small frequent feeds; use nasogastric fluids if oral intake is below half the usual amount.",
                "Consider high-flow nasal cannula therapy for infants with hypoxaemia despite standard oxygen.",
                "Discuss with a senior clinician any infant with apnoeas or rising oxygen requirement."]),
        ("h2", "Consider consultation with local paediatric team when"),
        ("p", "The infant is under six weeks of age, was born prematurely, or has chronic lung or heart disease."),
        ("p", "Last updated June 2024"),
    ],
    "Croup_laryngotracheobronchitis": [
        ("h2", "Key points"),
        ("ul", ["Croup is a clinical diagnosis of barking cough, hoarse voice and inspiratory stridor.",
                "Give oral dexamethasone 0.15 mg/kg to all children with croup, including mild cases.",
                "Nebulised adrenaline is used for severe respiratory distress while steroids take effect."]),
        ("h2", "Assessment"),
        ("p", "Assess severity by the child's behaviour, work of breathing and stridor at rest. Avoid upsetting the child, because distress worsens airway obstruction; allow the child to stay on the parent's lap."),
        ("h2", "Management"),
        ("p", "Children with mild croup can go home after one dose of steroid with advice about warning signs. Observe children who needed adrenaline for at least three hours after the last dose before discharge."),
        ("p", "Last updated March 2024"),
    ],
    "Febrile_child": [
        ("h2", "Key points"),
        ("ul", ["Most febrile children have a self-limiting viral illness.",
                "Infants under three months need careful assessment, as serious bacterial infection is more common.",
                "Treat discomfort rather than the temperature itself."]),
        ("h2", "Assessment"),
        ("p", "Look for a focus of infection and for red flags: altered conscious state, poor perfusion, petechial rash, respiratory distress or fever lasting more than five days. Ask about immunisation status and recent travel."),
        ("h2", "Management"),
        ("ul", ["Infants under 28 days: full septic work-up and empiric intravenous antibiotics.",
                "Well children over three months without a focus: review in 24 to 48 hours if fever persists.",
                "Give paracetamol or ibuprofen only for discomfort, not to prevent febrile seizures."]),
        ("p", "Last updated August 2023"),
    ],
    "Immigrant_health_resources": [("p", "Links to immigrant health resources.")],
}


def rch_chrome(title: str, primary: str, path: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Clinical Practice Guidelines : {esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="canonical" href="https://www.rch.org.au{path}">
<link rel="stylesheet" href="/assets/css/rch.min.css">
{data_layer({"section": "clinicalguide", "path": path, "cms": "ektron"})}
{consent_config("www.rch.org.au")}
</head>
<body>
<div class="alert-banner"><p>Winter respiratory season: read the hospital's visitor advice before coming in. <a href="/news/">Details</a></p></div>
<header id="rch-header"><a href="/home/" class="logo">The Royal Children's Hospital Melbourne</a>
<nav class="rch-nav"><ul>{link_items(["Patients and families", "Health professionals", "Research", "Education", "Careers", "Support the RCH", "Contact"], "")}</ul></nav>
<form class="site-search" action="/search/"><input name="q" placeholder="Search RCH"></form></header>
<div class="container"><div class="row">
<nav id="rch-secondary" class="col-md-2"><h3>Clinical Practice Guidelines</h3><ul>{link_items(["Guideline index", "About the CPGs", "CPG development process", "Disclaimer", "Parent information", "Nursing guidelines"], "/clinicalguide/about")}</ul></nav>
<div id="rch-primary" class="col-md-10">
<h1>{esc(title)}</h1>
{primary}
</div></div></div>
<footer id="rch-footer"><p>The Royal Children's Hospital Melbourne, 50 Flemington Road, Parkville, Victoria, Australia.</p>
<ul>{link_items(["Privacy", "Disclaimer", "Accessibility", "Feedback"], "/about")}</ul>
<p>The hospital pays respect to the First Peoples of the land where it stands.</p></footer>
{script("(function(){var n=document.querySelector('.alert-banner');if(n&&sessionStorage.getItem('alertClosed')){n.remove();}})();")}
</body>
</html>
"""


index_items = "".join(f'<li><a href="/clinicalguide/guideline_index/{s}/">{esc(t)}</a></li>' for t, s, _ in RCH_INDEX)
page(f"{RCH}/clinicalguide/guideline_index/index.html", rch_chrome("Clinical Practice Guidelines", f"""
<div class="widgetBody"><p>The clinical practice guidelines of the Royal Children's Hospital are point-of-care guidelines for the assessment and management of common and serious conditions in children.</p></div>
<div class="tabs"><ul class="tabnav"><li><a href="#tab-All">All</a></li><li><a href="#tab-A">A</a></li><li><a href="#tab-B">B</a></li><li><a href="#tab-C">C</a></li></ul>
<div id="tabnav-letter-blocks"><div id="tab-All"><ul>{index_items}</ul></div></div></div>
<div class="widgetBody"><h3>Popular guidelines</h3><ul><li><a href="/clinicalguide/guideline_index/Bronchiolitis/">Bronchiolitis</a></li><li><a href="/clinicalguide/guideline_index/Head_injury/">Head injury</a></li></ul></div>
""", "/clinicalguide/guideline_index/"))
for title, slug_, alias in RCH_INDEX:
    if alias or slug_ not in RCH_TEXT:
        continue  # Acute_otitis_media is a stale index entry: 404
    widgets = ('<div class="widgetBody"><img alt="PIC endorsed" src="/uploadedImages/pic-logo.png"></div>\n'
               f'<div class="widgetBody">{blocks(RCH_TEXT[slug_])}</div>\n'
               '<div class="widgetBody"><h2>Reference List</h2><ol><li>Fixture reference one.</li><li>Fixture reference two.</li></ol></div>\n'
               '<div class="widgetBody"><h2>Parent information</h2><p><a href="/kidsinfo/">Kids Health Info fact sheet</a></p></div>')
    page(f"{RCH}/clinicalguide/guideline_index/{slug_}/index.html",
         rch_chrome(title.split(" (")[0], widgets, f"/clinicalguide/guideline_index/{slug_}/"))
page(f"{RCH}/robots.txt", robots("www.rch.org.au"))


# -- writing ------------------------------------------------------------------------------------------

def main() -> None:
    for relative, content in FIXTURE_PAGES.items():
        path = FIXTURES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"{len(FIXTURE_PAGES)} fixture files written under {FIXTURES}")


if __name__ == "__main__":
    main()
