"""The Labs page: ``page`` (NiceGUI) and its pure view model."""
