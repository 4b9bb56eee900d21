"""trainstack's pure model: config, catalog, cost, CIDR, tags, IAM documents, locations. No Pulumi here."""
