"""Entry point (placeholder until the CLI lands in this commit series)."""


def main(argv=None) -> int:
    return 0
