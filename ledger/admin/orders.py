"""Admin for orders, STK requests and the callback inbox."""
