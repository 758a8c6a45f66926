"""Risk has the last word: sizing, stops, policy modes, circuit breakers and costs."""
