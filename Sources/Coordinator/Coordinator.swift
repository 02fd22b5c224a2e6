// Coordinator target: see DESIGN.md.
