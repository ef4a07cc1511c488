"""The replay stage: general-domain replay text as documents."""
