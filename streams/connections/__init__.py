"""Clients to the services salespulse talks to (Kafka, Redis), made in one place from the settings,
with their security (TLS, SASL, AUTH) applied the same way everywhere."""
