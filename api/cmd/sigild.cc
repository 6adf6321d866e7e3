// Placeholder until the server wiring lands in this same change.
int main() { return 1; }
