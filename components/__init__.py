"""trainstack's reusable Pulumi ComponentResources, installed as `trainstack.components`.

Each module holds one `pulumi.ComponentResource` with flat, documented arguments, usable from any
Pulumi Python program; they import only the pure model (`trainstack.model`)."""
