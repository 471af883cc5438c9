"""The blocked-lookups report: `collect` reads it from the log database into a `data.Report`;
`terminal` renders it as one rich renderable and `page` as one HTML page (a string). The
command line (cli/report.py) prints or writes what they return."""
