// Kafka target: see DESIGN.md.
