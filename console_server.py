"""The console as one web server (`streamlit run console_server.py`): Streamlit's app (app.py and
its pages) plus the route that turns a sign-in into an HttpOnly session cookie (console_sessions),
so a reload keeps the person signed in."""

import streamlit as st

from console_sessions import session_routes

app = st.App("app.py", routes=session_routes())
