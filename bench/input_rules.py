"""Benchmark: what checking a contact against the provider's input rules costs, per contact.

The check runs on the request item the planner builds anyway (`policies.build_request`), so its
cost is `InputRules.problem` alone; building the item is measured too, for scale. People come
from the sandbox's seeded generator (about 3 % without a last name, 3 % without a company, 40 %
with a LinkedIn URL).

Run: `python bench/input_rules.py [--contacts 100000]`; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.base import Contact
from crm_sync.enrichment.input_rules import InputRules
from crm_sync.rules.policies import build_request
from crm_sync.sandbox.people import generate_people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    contacts = [
        Contact(str(p.index), p.first_name, p.last_name, p.company, p.domain, p.linkedin_url)
        for p in generate_people(args.contacts)
    ]
    started = time.perf_counter()
    items = [build_request(c, ("contact.emails",), "bench").wire() for c in contacts]
    build_us = (time.perf_counter() - started) / len(items) * 1e6
    figures: dict[str, float | int] = {"contacts": len(items), "build_request_us": build_us}
    for provider in ("fullenrich", "deepenrich"):
        rules = InputRules(provider)
        started = time.perf_counter()
        refused = sum(1 for item in items if rules.problem(item) is not None)
        figures[f"{provider}_check_us"] = (time.perf_counter() - started) / len(items) * 1e6
        figures[f"{provider}_refused"] = refused
    print(
        f"input rules: {figures['fullenrich_check_us']:.2f} us/contact (fullenrich), "
        f"{figures['deepenrich_check_us']:.2f} us/contact (deepenrich); "
        f"building the request item: {build_us:.2f} us/contact"
    )
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
