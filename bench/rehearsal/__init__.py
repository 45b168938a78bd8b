"""The season rehearsal: a whole application season under load, faults and hostile input (issue 8)."""
