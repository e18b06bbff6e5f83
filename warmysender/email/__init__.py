"""Email rendering (merge tags, spintax, HTML); sending and tracking will live here too."""
