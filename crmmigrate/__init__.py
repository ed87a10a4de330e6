"""crmmigrate: move customer data from departmental legacy systems into one CRM.

Importing the package has no side effects: no logging set-up, no environment loading.
"""

__version__ = "0.1.0"
