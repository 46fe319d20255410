"""Parsing uploaded site definitions: valid YAML and JSON, and every refusal, quickly."""

from __future__ import annotations

import json
import random
import time

import pytest

from queue_tasks.site_build import (
    SiteDefinitionError,
    SiteSectionContent,
    entity_id,
    parse_site_definition,
    write_offline_section,
)

VALID_YAML = """
site: Acme Bakery
business:
  business_type: neighbourhood bakery
  target_audience: young families
  brand_voice: warm and playful
routes:
  - path: /
    sections:
      - template: hero
      - template: features
        brief: fresh bread every morning
  - path: pricing/
    sections:
      - template: pricing
        name: plans
"""


def definition(sections_per_route: int = 1, routes: int = 1) -> dict:
    return {
        "site": "Acme Bakery",
        "business": {"business_type": "bakery"},
        "routes": [
            {"path": f"/page-{r}", "sections": [{"template": "faq", "name": f"faq-{s}"} for s in range(sections_per_route)]}
            for r in range(routes)
        ],
    }


def test_valid_yaml_gives_routes_sections_and_business_info():
    site = parse_site_definition(VALID_YAML, filename="site.yaml")
    assert site.site == "Acme Bakery"
    assert site.business.brand_voice == "warm and playful"
    assert [r.path for r in site.routes] == ["/", "/pricing"]
    assert [(s.name, s.template) for s in site.routes[0].sections] == [("hero", "hero"), ("features", "features")]
    assert site.routes[0].sections[1].brief == "fresh bread every morning"
    assert site.routes[1].sections[0].name == "plans"
    assert site.section_count == 3


def test_valid_json_gives_the_same_definition_as_yaml():
    from_yaml = parse_site_definition(VALID_YAML, filename="site.yml")
    from_json = parse_site_definition(json.dumps(from_yaml.model_dump(mode="json")).encode(), filename="site.json")
    assert from_json == from_yaml


def test_json_is_recognised_without_a_file_name():
    assert parse_site_definition(json.dumps(definition(2))).section_count == 2


def test_unknown_template_is_refused_naming_the_field():
    bad = definition()
    bad["routes"][0]["sections"][0]["template"] = "carousel"
    with pytest.raises(SiteDefinitionError, match=r"routes\.0\.sections\.0\.template.*'hero'"):
        parse_site_definition(json.dumps(bad))


def test_yaml_alias_bomb_is_refused_quickly():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(lines) + "\nsite: x\n"
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match="alias|anchor"):
        parse_site_definition(bomb, filename="bomb.yaml")
    assert time.monotonic() - started < 1.0


def test_yaml_merge_key_alias_is_refused():
    text = VALID_YAML + "extra: &base {a: 1}\nother:\n  <<: *base\n"
    with pytest.raises(SiteDefinitionError, match="anchor|alias"):
        parse_site_definition(text, filename="site.yaml")


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_ten_thousand_deep_nesting_is_refused_quickly(fmt):
    deep = "[" * 10_000 + "]" * 10_000
    text = deep if fmt == "json" else "site:\n  x: " + deep
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match="nested more than 20 levels"):
        parse_site_definition(text, filename=f"deep.{fmt}")
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_ten_thousand_sections_are_refused_with_the_cap_message(fmt):
    site = definition(sections_per_route=100, routes=100)
    if fmt == "json":
        text = json.dumps(site)
    else:
        text = "site: Acme\nbusiness: {business_type: bakery}\nroutes:\n" + "".join(
            f"  - path: /p{r}\n    sections:\n" + "".join(f"      - {{template: faq, name: f{s}}}\n" for s in range(100))
            for r in range(100)
        )
    started = time.monotonic()
    with pytest.raises(SiteDefinitionError, match=r"more than 200 sections.*INKWELL_MAX_SITE_SECTIONS"):
        parse_site_definition(text, filename=f"big.{fmt}")
    assert time.monotonic() - started < 2.0


def test_the_section_cap_follows_the_setting(monkeypatch):
    from inkwell_settings import get_settings

    monkeypatch.setenv("INKWELL_MAX_SITE_SECTIONS", "3")
    get_settings.cache_clear()
    try:
        assert parse_site_definition(json.dumps(definition(3))).section_count == 3
        with pytest.raises(SiteDefinitionError, match="more than 3 sections"):
            parse_site_definition(json.dumps(definition(4)))
    finally:
        get_settings.cache_clear()


def test_empty_routes_are_refused():
    with pytest.raises(SiteDefinitionError, match="no routes"):
        parse_site_definition(json.dumps({**definition(), "routes": []}))


def test_a_route_without_sections_is_refused():
    site = definition()
    site["routes"][0]["sections"] = []
    with pytest.raises(SiteDefinitionError, match=r"routes\.0\.sections"):
        parse_site_definition(json.dumps(site))


def test_two_sections_with_the_same_name_in_one_route_are_refused():
    site = definition()
    site["routes"][0]["sections"] = [{"template": "faq"}, {"template": "faq"}]
    with pytest.raises(SiteDefinitionError, match="two sections named 'faq'"):
        parse_site_definition(json.dumps(site))


def test_invalid_yaml_says_where():
    with pytest.raises(SiteDefinitionError, match="not valid YAML.*line"):
        parse_site_definition("site: [unclosed\n", filename="x.yaml")


def test_oversized_file_is_refused_before_parsing():
    with pytest.raises(SiteDefinitionError, match=r"larger than 1 MB \(1,000,001 bytes; at most 1,000,000\)"):
        parse_site_definition(b" " * 1_000_001, filename="x.json")


def test_entity_ids_are_deterministic_and_distinct_per_environment():
    assert entity_id("Acme", "/", "hero", "preview") == entity_id("Acme", "/", "hero", "preview")
    assert entity_id("Acme", "/", "hero", "preview") != entity_id("Acme", "/", "hero", "production")
    assert entity_id("Acme", "/", "hero", "preview") != entity_id("Acme", "/about", "hero", "preview")


@pytest.mark.parametrize("template", ["hero", "features", "faq", "cta", "testimonials", "pricing", "about", "contact"])
def test_offline_writer_gives_valid_deterministic_content_built_from_the_business(template):
    prompt = f"Site: Acme Bakery\nPage route: /\nSection: s\nTemplate: {template}\nBusiness type: bakery\nTarget audience: young families"
    first = write_offline_section(prompt, random.Random(7))
    assert first == write_offline_section(prompt, random.Random(7))
    content = SiteSectionContent.model_validate(first)
    assert content.items
    assert "Acme Bakery" in json.dumps(first)


@pytest.mark.parametrize(
    "text",
    [
        "site: a\n---\nsite: b\n",  # two documents
        "site: !!python/object/apply:os.system ['true']\n",  # a tag the safe loader refuses
        "site: Acme\nbusiness: {business_type: " + "9" * 5000 + "}\nroutes: []\n",  # an integer Python will not convert
    ],
)
def test_yaml_the_safe_loader_refuses_is_reported_not_raised(text):
    with pytest.raises(SiteDefinitionError):
        parse_site_definition(text, filename="x.yaml")


def test_a_json_integer_too_long_to_convert_is_refused():
    with pytest.raises(SiteDefinitionError, match="not valid JSON"):
        parse_site_definition('{"site": ' + "9" * 5000 + "}", filename="x.json")


def test_business_info_from_the_form_fills_in_a_file_without_it():
    text = "site: Acme\nroutes:\n  - path: /\n    sections: [{template: hero}]\n"
    site = parse_site_definition(text, filename="x.yaml", business={"business_type": "bakery", "brand_voice": " "})
    assert (site.business.business_type, site.business.brand_voice) == ("bakery", "")
