//! Client for Meterkast tangle nodes, used by the Pi agent and the web app.
