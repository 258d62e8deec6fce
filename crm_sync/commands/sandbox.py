"""`crm-sync sandbox`: serve the local emulators, and print a config that points at them."""

from __future__ import annotations

import argparse
import sys
import threading

import yaml

SERVICES = ("enrichment", "hubspot", "salesforce", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("service", choices=SERVICES, help="which emulator to serve")
    parser.add_argument(
        "--port", type=int, default=0, help="port (all: this and the next two); 0 picks free ones"
    )
    parser.add_argument("--contacts", type=int, default=300, help="seeded CRM contacts")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated people")
    parser.add_argument(
        "--completion-delay",
        type=float,
        default=2.0,
        help="seconds before an enrichment finishes",
    )
    from crm_sync.sandbox.enrichment.styles import AnswerStyles

    parser.add_argument(
        "--answer-style",
        action="append",
        choices=AnswerStyles.names(),
        default=[],
        help="an edge of the real API the enrichment emulator shows (repeatable)",
    )
    parser.add_argument(
        "--session-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="Salesforce sessions and HubSpot OAuth access tokens expire after this long "
        "(default: Salesforce never, HubSpot 1800)",
    )
    parser.add_argument(
        "--lenient-input",
        action="store_true",
        help="accept a LinkedIn URL alone (FullEnrich's docs); by default the enrichment "
        "emulator is strict and refuses an item without first name, last name and company",
    )


def run(args: argparse.Namespace) -> int:
    from crm_sync.sandbox.enrichment.styles import AnswerStyles
    from crm_sync.sandbox.world import SandboxWorld, WorldOptions

    options = WorldOptions(
        hubspot_contacts=args.contacts,
        salesforce_contacts=args.contacts,
        seed=args.seed,
        completion_delay=args.completion_delay,
        enrichment_kwargs={
            "styles": AnswerStyles.named(args.answer_style),
            "strict_input": not args.lenient_input,
        },
        salesforce_kwargs={"session_ttl": args.session_ttl},
        hubspot_kwargs={"access_token_ttl": args.session_ttl or 1800.0},
    )
    world = SandboxWorld(options, ports=service_ports(args.service, args.port))
    with world:
        wanted = SERVICES[:3] if args.service == "all" else (args.service,)
        for name in SERVICES[:3]:
            if name not in wanted:
                world.servers[name].stop()
        _describe(world, wanted)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
    return 0


def service_ports(service: str, port: int) -> tuple[int, int, int]:
    """(enrichment, hubspot, salesforce) ports: NAME gets N itself; `all` gets N, N+1, N+2.

    The two emulators not asked for are stopped at once; they take free ports meanwhile.
    """
    if not port:
        return (0, 0, 0)
    if service == "all":
        return (port, port + 1, port + 2)
    ports = [0, 0, 0]
    ports[SERVICES.index(service)] = port
    return (ports[0], ports[1], ports[2])


def _describe(world: object, wanted: tuple[str, ...]) -> None:
    from crm_sync.sandbox.auth_guide import auth_lines, example_settings, write_key_pair
    from crm_sync.sandbox.world import SandboxWorld

    assert isinstance(world, SandboxWorld)
    key_file, _ = write_key_pair()
    lines = ["crm-sync sandbox (Ctrl-C to stop)"]
    if "enrichment" in wanted:
        lines += [
            f"enrichment API: {world.enrichment_url}",
            f"  api key: {world.enrichment.api_key}",
        ]
        styles = [n for n in world.enrichment.styles.names() if getattr(world.enrichment.styles, n)]
        if styles:
            lines.append(f"  answer styles: {', '.join(styles)}")
        lines.append(f"  also v2 (api_version: v2): {world.servers['enrichment'].url}/api/v2")
    if "hubspot" in wanted:
        lines += [
            f"hubspot: {world.servers['hubspot'].url}",
            f"  access token: {world.hubspot.token}",
        ]
    if "salesforce" in wanted:
        sf = world.salesforce
        lines += [
            f"salesforce: {world.servers['salesforce'].url}",
            f"  session id: {sf.session_id}",
            f"  username: {sf.username} (password sandbox-password, token sandbox-token)",
        ]
    lines += auth_lines(world, wanted, key_file)
    if wanted == SERVICES[:3]:
        config = world.config_dict("sqlite:///crm-sync-sandbox.sqlite3")
        lines += [
            "",
            "# a config that uses these emulators:",
            yaml.safe_dump(config, sort_keys=False),
            "# each auth flow's settings keys (replace a source's own to try one):",
            *_commented(yaml.safe_dump(example_settings(world, key_file), sort_keys=False)),
        ]
    print("\n".join(lines), flush=True)


def _commented(text: str) -> list[str]:
    """YAML shown as comments, so the block above stays a config that loads when copied whole."""
    return [f"# {line}" for line in text.rstrip("\n").splitlines()]
