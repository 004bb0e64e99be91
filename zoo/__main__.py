"""`python -m zoo`: the `zoo` command, as `torchrun -m zoo ...` starts it on every rank."""

from .cli import main

main()
