"""The dashboard's Streamlit pages (run by path through ``st.navigation``; installed as ``dashboard.pages``)."""
