"""CLI commands of the product's areas; each module registers its commands on `intake.cli.app`."""
