"""Operating it: the operator CLI (`python -m common.ops.admin`), the sweeper and the operations behind them."""
