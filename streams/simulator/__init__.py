"""The sales-floor simulator behind ``salespulse simulate``.

- ``world``: who and what the floor has (reps, teams, products, accounts, targets);
- ``hours``: when people work, and how busy they are;
- ``floor``: the pure, seeded stream of events a day on that floor produces;
- ``invalid``: the malformed messages a real source also sends;
- ``incidents``: scripted incidents (a conversion dip, a churn spike, ...);
- ``clock``: how event time maps to wall time (real, always-open, accelerated);
- ``produce`` and ``command``: sending it all to Kafka, and the command line.
"""
