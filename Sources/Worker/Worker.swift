// Worker target: see DESIGN.md.
