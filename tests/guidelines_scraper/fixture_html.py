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
  <div class="ot-sdk-container"><p id="onetrust-policy-text">We use cookies to give you the best experience on our site, to analyze traffic and to personalize content. You can change your cookie settings at any time.</p>
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
<div class="cookie-notice hide-for-print" role="dialog"><p>This site uses cookies to improve your experience and to measure traffic. By continuing you accept our use of cookies.</p><a class="button" href="#">I agree</a> <a href="/en/privacy">Privacy policy</a></div>
<a href="#main-content" class="show-on-focus">Skip to Content</a>
<header class="site-header hide-for-print">
  <div class="top-bar"><a href="/en" class="logo"><img src="/assets/img/cps-logo.svg" alt="Canadian Paediatric Society"></a>
  <p class="tagline">A home for paediatricians. A voice for children and youth.</p>
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


CPS_DISCLAIMER = ("p", "Disclaimer: The recommendations in this position statement do not indicate an exclusive course of treatment or procedure to be followed. Variations, taking into account individual circumstances, may be appropriate.")

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
<div id="ddc-cookie-banner" class="ddc-cookie"><p>We use cookies and similar technologies to personalize content and ads and to analyze our traffic.</p><button class="ddc-btn">Accept</button><a href="/support/privacy.html">Learn more</a></div>
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
<p>Drugs.com provides accurate and independent information on more than 24,000 prescription drugs, over-the-counter medicines and natural products. This fixture copy holds invented text.</p>
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
<p>Please note - dosage information listed on this website should be used as a guideline only. Always consult your doctor or healthcare specialist before changing the dosage of any medicine.</p>
<h2>Browse dosage guides by letter</h2>
<ul class="ddc-paging ddc-paging-alpha">{letters}</ul>
<h2>More about dosage and administration</h2>
<p>The dose is the amount of a drug taken at one time; the dosage regimen is how often it is taken. Many factors decide a dose, including age, weight, kidney and liver function and other medicines.</p>
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
<p>Always consult your healthcare provider to ensure the information displayed on this page applies to your personal circumstances.</p>
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


# -- writing ------------------------------------------------------------------------------------------

def main() -> None:
    for relative, content in FIXTURE_PAGES.items():
        path = FIXTURES / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"{len(FIXTURE_PAGES)} fixture files written under {FIXTURES}")


if __name__ == "__main__":
    main()
