"""`cogmora`: the command line (SPEC section 7)."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from cogmora import logs
from cogmora.cli import agent_cmd, processes, replay_cmd
from cogmora.cli.compose import build_system
from cogmora.cli.demo import command as demo_command
from cogmora.cli.helpfmt import hide_type_tags
from cogmora.cli.simulator_cmd import simulator
from cogmora.cli.stores import describe, start_store
from cogmora.errors import CogmoraError, ConfigError, Fatal, Rejected, Temporary
from cogmora.services.accounts import new_token
from cogmora.settings import Settings, load
from cogmora.store.firestore import indexes as firestore_indexes

T = TypeVar("T")

hide_type_tags()

app = typer.Typer(
    name="cogmora",
    help=(
        "Cogmora: real-time paper trading on KuCoin market data.\n\n"
        "Configuration comes from COGMORA_* environment variables (see the README); "
        "flags override them. Start with `cogmora demo` to see the whole system offline."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown joins a docstring's wrapped lines into paragraphs, so help text is wrapped
    # once, at the terminal's width, not at the source's line breaks as well.
    rich_markup_mode="markdown",
)
users_app = typer.Typer(help="Create users and deposit paper money.", no_args_is_help=True)
indexes_app = typer.Typer(
    help="The Firestore index file and the query registry.", no_args_is_help=True
)
app.add_typer(users_app, name="users")
app.add_typer(indexes_app, name="indexes")

StoreOpt = Annotated[
    str | None, typer.Option("--store", help="Store URL (overrides COGMORA_STORE).")
]


def settings_or_exit(**overrides: object) -> Settings:
    try:
        settings = load().with_overrides(**overrides)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level, settings.log_json)
    return settings


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run a command's coroutine; our errors become one clear line and an exit code."""
    try:
        return asyncio.run(main())  # type: ignore[arg-type]
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Rejected as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (Fatal, CogmoraError) as exc:
        typer.echo(f"fatal: {exc}", err=True)
        raise typer.Exit(2) from None


def say_store(settings: Settings, flag: str | None) -> None:
    """Which store was used, on stderr (stdout stays the JSON answer)."""
    given = flag is not None or "COGMORA_STORE" in os.environ
    typer.echo(describe(settings.store_url, given), err=True)


def parse_amount(value: str, name: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{name} must be a decimal number, got {value!r}") from None
    if not amount.is_finite():
        raise typer.BadParameter(f"{name} must be finite")
    return amount


@users_app.command("create")
def users_create(
    uid: Annotated[str, typer.Argument(help="The user's id (letters, digits, . _ -).")],
    balance: Annotated[str, typer.Option(help="Opening paper balance in USDT.")] = "0",
    store: StoreOpt = None,
) -> None:
    """Create a user; prints {"uid": ..., "token": ...} as JSON (the token is shown once)."""
    settings = settings_or_exit(store_url=store)
    amount = parse_amount(balance, "--balance")

    async def main() -> None:
        # The token is chosen before the first attempt, so a retry after an answer that was
        # lost (the store resolves most itself) finds the user it made, not a Conflict.
        token = new_token()
        st = await start_store(settings.store_url)
        say_store(settings, store)
        try:
            system = build_system(settings, st)
            delay = 0.2
            for attempt in range(5):
                try:
                    user, _ = await system.accounts.create_user(uid, amount, token)
                    break
                except Temporary:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(random.uniform(0, delay))
                    delay *= 2
        finally:
            await st.close()
        typer.echo(json.dumps({"uid": user.uid, "token": token}))

    run_async(main)


@users_app.command("deposit")
def users_deposit(
    uid: Annotated[str, typer.Argument(help="The user's id.")],
    amount: Annotated[str, typer.Argument(help="USDT to add to the balance.")],
    store: StoreOpt = None,
) -> None:
    """Add paper money to a user's balance (booked in the ledger as a deposit)."""
    settings = settings_or_exit(store_url=store)
    value = parse_amount(amount, "AMOUNT")

    async def main() -> None:
        st = await start_store(settings.store_url)
        say_store(settings, store)
        try:
            user = await build_system(settings, st).accounts.deposit(uid, value)
        finally:
            await st.close()
        typer.echo(json.dumps({"uid": user.uid, "balance": format(user.balance, "f")}))

    run_async(main)


DEFAULT_INDEX_FILE = Path("deploy/firestore.indexes.json")


@indexes_app.command("generate")
def indexes_generate(
    out: Annotated[Path, typer.Option(help="Where to write the file.")] = DEFAULT_INDEX_FILE,
) -> None:
    """Write firestore.indexes.json from the query registry (cogmora.store.queries)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(firestore_indexes.render())
    typer.echo(f"wrote {out}")


@indexes_app.command("check")
def indexes_check(
    file: Annotated[Path, typer.Option(help="The file to check.")] = DEFAULT_INDEX_FILE,
) -> None:
    """Fail (exit 1) when the index file and the query registry disagree."""
    if not file.exists():
        typer.echo(f"{file} does not exist; run `cogmora indexes generate`", err=True)
        raise typer.Exit(1)
    try:
        existing = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        typer.echo(f"{file} is not valid JSON: {exc}", err=True)
        raise typer.Exit(1) from None
    if not isinstance(existing, dict):
        typer.echo(f"{file} is not a JSON object with indexes and fieldOverrides", err=True)
        raise typer.Exit(1)
    problems = firestore_indexes.differences(existing)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{file} matches the query registry")


processes.register(app, settings_or_exit, run_async)
demo_command.register(app, settings_or_exit, run_async)
agent_cmd.register(app, settings_or_exit, run_async)
replay_cmd.register(app, settings_or_exit, run_async)
app.command("simulator")(simulator)


def main() -> None:
    app(prog_name="cogmora")


if __name__ == "__main__":
    main()
