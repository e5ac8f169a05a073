"""Reporting: tables and figures. The only room that imports matplotlib; never touches a model."""
