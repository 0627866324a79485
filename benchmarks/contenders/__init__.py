"""Ways to look rows up, one module per library; each builds ``Contender``s."""
