"""The ProX program language as data: function specs (language.yaml) and prompt pieces per domain."""
