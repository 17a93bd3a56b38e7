"""`python -m molmag.cli` runs the `molmag` command."""

from molmag.cli.main import app

if __name__ == "__main__":
    app()
