"""Built-in banks of questions, facts and concepts: loaders and validation; the tables are data files beside them."""
