"""The type of the `subparsers` every command module's `register` receives.

typeshed makes argparse's subparsers action generic, the runtime class is not: the
alias is subscripted only for the type checker, so no module needs its own ignore.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction
