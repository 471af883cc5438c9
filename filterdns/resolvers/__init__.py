"""The links of the resolver chain; `app.build_chain` orders them."""
