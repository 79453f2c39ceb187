"""Admin for accounts, journal entries and exports."""
