"""molmag's command line: one typer app, each command a thin layer over the library."""
