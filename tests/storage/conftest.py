"""`fresh_database`: an untouched SQLite file or PostgreSQL schema per test."""

from tests.databases import fresh_database

__all__ = ["fresh_database"]
