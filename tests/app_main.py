"""Main file for NiceGUI's ``user`` fixture: the same pages the real app serves."""

from nicegui import ui

from loralens.app.main import register_pages

register_pages()
ui.run(storage_secret="test secret", reload=False, show=False)
