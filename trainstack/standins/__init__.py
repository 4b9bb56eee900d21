"""LOCAL STAND-INS for what trainstack drives, for its tests and `trainstack try`: a strict fake of the
Pulumi CLI (fake_pulumi), what `up` would create made in a moto server (cloud), and the trial (trial).
Never used on the real path."""
