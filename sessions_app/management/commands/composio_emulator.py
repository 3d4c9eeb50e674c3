"""Run the Composio emulator in the foreground on a loopback port."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sessions_app.composio.emulator import Emulator, StateFileError

DEFAULT_API_KEY = "emulator-local-key"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Command(BaseCommand):
    help = (
        "Serve the Composio v3.1 emulator on a loopback port until Ctrl-C. "
        "Point the SDK at the printed base URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9900, help="TCP port (0 picks a free one)")
        parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
        parser.add_argument(
            "--api-key",
            default=None,
            help="accepted x-api-key (default: settings.COMPOSIO_EMULATOR_API_KEY, "
            f"else {DEFAULT_API_KEY!r})",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0, help="seconds added to every API answer"
        )
        parser.add_argument(
            "--state",
            default=None,
            metavar="PATH",
            help="keep sessions, connected accounts and connect links in this SQLite file and "
            "reload them at start (default: in memory, forgotten on exit)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        if not is_loopback(host):
            raise CommandError(f"Refusing to listen on non-loopback host {host!r}.")
        if options["latency"] < 0:
            raise CommandError("--latency must be >= 0.")
        api_key = options["api_key"]
        key_source = "--api-key"
        if not api_key:
            api_key = settings.COMPOSIO_EMULATOR_API_KEY or DEFAULT_API_KEY
            key_source = (
                "settings.COMPOSIO_EMULATOR_API_KEY"
                if settings.COMPOSIO_EMULATOR_API_KEY
                else "built-in default"
            )

        try:
            emulator = Emulator(
                api_key=api_key,
                host=host,
                port=options["port"],
                access_log=self._access_log,
                state_path=options["state"],
            )
        except StateFileError as exc:
            raise CommandError(f"{exc}. Move it away or start with a new path.") from exc
        if options["latency"]:
            emulator.faults.latency(options["latency"])
        try:
            emulator.start()
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{options['port']}: {exc}") from exc

        # The key's value is never printed, only where it came from.
        self.stdout.write(f"Composio emulator listening on {emulator.base_url}")
        self.stdout.write(f"API key from {key_source}; control API at /_emulator/health")
        if emulator.state_path is not None:
            loaded = len(emulator.sessions)
            self.stdout.write(
                f"State kept in {emulator.state_path} (loaded {loaded} "
                f"session{'' if loaded == 1 else 's'})"
            )
        else:
            self.stdout.write("State kept in memory only (--state PATH keeps it across restarts)")
        self.stdout.write("Quit with CONTROL-C.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            self.stdout.write("Stopping.")
        finally:
            emulator.stop()

    def _access_log(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
