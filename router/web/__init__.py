"""The web pages: incidents, one incident, the routing dry run and the rules, rendered on the
server from Jinja2 templates (`templates/`) with one small style sheet (`static/`), no script."""
