"""The Explorer page: ``page`` (NiceGUI) and its pure view model."""
