"""pinsights: open audience insights speaking the Pinterest v5 Audience Insights wire format."""

__version__ = "0.1.0"
