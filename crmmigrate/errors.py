"""Exception hierarchy.

Bad *rows* never raise: they become rejects. These exceptions are for broken specs,
unreachable sources or targets, and a run whose ledger does not balance. Each carries the
place it happened as attributes (fed to ``run.json`` and the CLI) and a message that starts
with that place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# The password runs to the *last* `@` before the host, so an unencoded `@` inside it is masked too.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^/\s]*)(?P<tail>@)", re.I)


SECRET_PARAMETERS = ("password", "sslpassword", "passwd", "pwd", "secret", "token", "api_key", "apikey", "access_key")
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:%s)=)[^&\s#'\"]*" % "|".join(SECRET_PARAMETERS), re.I)


def mask_secrets(text: str) -> str:
    """Replace every URL password in *text*: ``user:password@`` and ``?password=…`` alike.

    >>> mask_secrets("postgresql+psycopg://ann:s3cr3t@db:5432/crm")
    'postgresql+psycopg://ann:***@db:5432/crm'
    >>> mask_secrets("postgresql://ann@db/crm?sslmode=require&password=s3cr3t")
    'postgresql://ann@db/crm?sslmode=require&password=***'
    """
    return _QUERY_SECRET.sub(r"\g<head>***", _URL_PASSWORD.sub(r"\g<head>***\g<tail>", text))


class CrmMigrateError(Exception):
    """Base of every error crmmigrate raises on purpose."""

    exit_code = 2

    def attrs(self) -> dict[str, object]:
        """Structured attributes for ``run.json``."""
        return {"type": type(self).__name__, "message": mask_secrets(str(self))}


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a mapping or settings file."""

    file: str
    line: int | None  # 1-based
    key_path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.key_path}: {self.message}" if self.key_path else f"{where}: {self.message}"


class MappingSpecError(CrmMigrateError):
    """Every problem found in one or more mapping files, reported together."""

    def __init__(self, problems: list[SpecProblem]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        head = f"{len(lines)} problem(s) in mapping files:" if len(lines) > 1 else ""
        super().__init__("\n".join([head, *lines]) if head else lines[0])

    def attrs(self) -> dict[str, object]:
        return {**super().attrs(), "problems": [p.__dict__ for p in self.problems]}


class SettingsError(CrmMigrateError):
    """The project settings or run parameters are wrong."""


class SourceError(CrmMigrateError):
    """A legacy source cannot be opened at all (not a bad row: those are rejects)."""

    def __init__(self, source: str, message: str):
        self.source = source
        self.detail = mask_secrets(message)
        super().__init__(f"In source `{source}`: {self.detail}")


class TargetError(CrmMigrateError):
    """The target CRM cannot be reached or is not what the mapping expects."""

    def __init__(self, target: str, message: str):
        self.target = mask_secrets(target)
        super().__init__(f"Target {self.target}: {mask_secrets(message)}")


class SchemaOutOfDate(TargetError):
    """The CRM's schema is not the one this crmmigrate writes: behind it (an upgrade is due), made
    before Alembic, or ahead of it (a newer crmmigrate upgraded it)."""

    def __init__(self, target: str, message: str, revision: str | None):
        self.revision = revision
        super().__init__(target, message)


class StageInputError(CrmMigrateError):
    """A stage was asked to run before the stage it reads from produced its output."""


@dataclass
class Imbalance:
    """One (source, entity) whose ledger does not account for every record read."""

    source: str
    entity: str
    records_in: int
    ledger_rows: int
    missing_keys: list[str] = field(default_factory=list)
    doubled_keys: list[str] = field(default_factory=list)  # keys with more than one outcome


class LedgerImbalance(CrmMigrateError):
    """Records were lost or the CRM disagrees with the ledger: the run fails."""

    exit_code = 1

    def __init__(self, imbalances: list[Imbalance], verification: list[str]):
        self.imbalances = imbalances
        self.verification = verification
        parts = [
            f"In source `{i.source}` ({i.entity}): {i.records_in} records in, {i.ledger_rows} ledger rows"
            + (f"; missing keys {', '.join(i.missing_keys[:5])}" if i.missing_keys else "")
            + (f"; keys with two outcomes {', '.join(i.doubled_keys[:5])}" if i.doubled_keys else "")
            for i in imbalances
        ]
        super().__init__("; ".join(parts + verification) or "ledger does not balance")

    def attrs(self) -> dict[str, object]:
        return {
            **super().attrs(),
            "imbalances": [i.__dict__ for i in self.imbalances],
            "verification": self.verification,
        }


class StageFailed(CrmMigrateError):
    """A stage's notebook raised; names the stage and the executed notebook."""

    exit_code = 4

    def __init__(self, stage: str, notebook: str, cause: str, error_type: str = ""):
        self.stage = stage
        self.notebook = notebook
        # A source, mapping or target error met inside the stage (a sheet unreadable past a row, a
        # database failing mid-read) is not a crash: it exits as it would before any stage ran.
        known = {c.__name__: c for c in _subclasses(CrmMigrateError)}.get(error_type)
        if known is not None and known.exit_code == 2:
            self.exit_code = 2
        super().__init__(f"Stage `{stage}` failed (executed notebook: {notebook}): {mask_secrets(cause)}")


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]
