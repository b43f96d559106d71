from icsbridge.cli import app

app()
