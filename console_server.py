"""The console as one web server (`streamlit run console_server.py`): Streamlit's app (app.py and
its pages) plus the route that turns a sign-in into an HttpOnly session cookie (console_sessions),
so a reload keeps the person signed in."""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from console_sessions import session_routes

# app.py builds the navigation from the signed-in role (st.navigation). Streamlit decides whether the
# pages/ folder is its automatic page list at the first session and only learns otherwise once a
# script calls st.navigation: a first visitor who opened a page's link got that page run on its own,
# with every page listed and Home named "app". Told up front, every run goes through app.py.
PagesManager.uses_pages_directory = False

app = st.App("app.py", routes=session_routes())
