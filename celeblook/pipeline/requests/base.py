"""A request: a frozen dataclass whose fields are a verb's inputs, each declared once (``param``) with its help, its
label and its check, most often a limit of ``celeblook.limits.Limits`` named by attribute (sizes and slots depend on
the generator, so a request is checked against the pipeline's own limits).

``request.check(limits)`` is the one check: the request with every field as the verb takes it, or one InputError line
naming the field (``err.field`` is its name). Built by hand, ``RandomRequest(seed="7")`` holds what a client sent;
``RandomRequest.checked(limits, seed="7")`` is both steps. The CLI's flags (celeblook.cli.requests), the app's
controls (app.py) and the page's site.json (celeblook.web.build) are made from the same fields, like the jobs' flags
from their configs' (celeblook.settings.setting).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, ClassVar, Self

from ...errors import InputError
from ...limits import Choice, Limits, Range

# a field's own check, where no single limit says it: (the value as the verb takes it, notices), or InputError
Check = Callable[[Limits, object], tuple[Any, list[str]]]


def param(help: str, default: Any = MISSING, *, label: str, limit: str | None = None, check: Check | None = None,
          flag: str | None = None) -> Any:
    """A request field: ``help`` (the flag's help, the control's info), ``label`` (the control's), its ``default``
    (none: every request gives it), the ``Limits`` attribute it must lie in (``limit``) and its check: ``check`` where
    given (which may read ``value`` first: "style mix" is style_mix), else the limit's; with neither it is passed on
    as it is (what a face starts from: the verb checks it when it reads it). ``flag``: the command line's name of it,
    where that is not --NAME."""
    return field(default=default, metadata={"help": help, "label": label, "limit": limit, "check": check, "flag": flag})


@dataclass(frozen=True)
class Request:
    """One verb's request (``verb``: the Pipeline method that takes it)."""

    verb: ClassVar[str]
    notices: tuple[str, ...] = field(default=(), kw_only=True, repr=False)  # what checking said (a prompt cut short)
    # the limits it was checked against; not an argument, so dataclasses.replace() makes an unchecked request
    checked_against: Limits | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def params(cls) -> dict[str, Field]:
        """The request's fields (what a caller gives), in order."""
        return {f.name: f for f in fields(cls) if "help" in f.metadata}

    @classmethod
    def checked(cls, limits: Limits, *args: object, **raw: object) -> Self:
        return cls(*args, **raw).check(limits)

    def check(self, limits: Limits) -> Self:
        """This request with every field checked against ``limits`` (once: a request checked against equal limits is
        returned as it is); InputError "NAME ..." for the first bad field."""
        if self.checked_against == limits:
            return self
        values, notices = {}, list(self.notices)
        for name, f in self.params().items():
            unused = self._unused(values)
            values[name], more = (unused[name], []) if name in unused else check_field(f, limits, getattr(self, name))
            notices += more
        checked = replace(self, **values, notices=tuple(notices))._rules(limits)
        object.__setattr__(checked, "checked_against", limits)  # frozen: set once, here
        return checked

    @classmethod
    def schema(cls, limits: Limits) -> dict[str, dict[str, Any]]:
        """The fields as JSON (the page's site.json): label, help, default where it is a value, and the limit's name
        with its range or options."""
        return {name: field_schema(f, limits) for name, f in cls.params().items()}

    def _unused(self, checked: dict[str, object]) -> dict[str, object]:
        """The fields that the ones checked so far make unused (a subclass's), with the value each takes: not checked."""
        return {}

    def _rules(self, limits: Limits) -> Self:
        """Checks across fields, on checked values (a subclass's)."""
        return self


def limit_of(f: Field, limits: Limits) -> Range | Choice | None:
    """The limit a field must lie in, if one says it."""
    return getattr(limits, f.metadata["limit"]) if f.metadata["limit"] else None


def field_schema(f: Field, limits: Limits) -> dict[str, Any]:
    found: dict[str, Any] = {"label": f.metadata["label"], "help": f.metadata["help"]}
    if isinstance(f.default, (int, float, str, tuple)) and not isinstance(f.default, bool):
        found["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
    limit = limit_of(f, limits)
    if isinstance(limit, Range):
        found |= {"limit": f.metadata["limit"], "low": limit.low, "high": limit.high, "integer": limit.integer}
    elif isinstance(limit, Choice):
        found |= {"limit": f.metadata["limit"], "options": list(limit.options)}
    return found


def check_field(f: Field, limits: Limits, value: object) -> tuple[Any, list[str]]:
    """(the value as the verb takes it, notices); InputError naming the field: its message names it as people say it
    ("truncation psi must be ...", "the target prompt is empty"), else it starts with the field's name."""
    limit, own = limit_of(f, limits), f.metadata["check"]
    try:
        if own is not None:
            return own(limits, value)
        return (limit.check(value), []) if limit is not None else (value, [])
    except InputError as err:
        message = str(err)
        named = f.name.replace("_", " ").lower() in message.lower()
        raise InputError(message if named else f"{f.name}: {message}", field=f.name) from None


def takes(request_type: type[Request]) -> Callable:
    """A verb that takes a ``request_type``: ``pipe.random_faces(RandomRequest(seed=1, count=4))`` (with changes:
    ``pipe.random_faces(request, size=256)``), or its fields as arguments, which make one (positional in field order,
    or by name): ``pipe.random_faces(1, count=4)``. Either way
    the request is checked once, against the pipeline's limits, before the verb runs; ``progress`` is the verb's."""

    def wrap(verb: Callable) -> Callable:
        @functools.wraps(verb)
        def call(self, *args: object, progress: Callable | None = None, **raw: object):
            given = len(args) == 1 and isinstance(args[0], request_type)  # a request, with changes if any
            request = (replace(args[0], **raw) if raw else args[0]) if given else request_type(*args, **raw)
            return verb(self, request.check(self.limits), progress)

        own = [p for name, p in inspect.signature(request_type).parameters.items() if name in request_type.params()]
        call.__signature__ = inspect.Signature([
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *own,
            inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=None)])
        return call

    return wrap
