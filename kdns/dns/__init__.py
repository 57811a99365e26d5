"""Sans-IO DNS vocabulary: names, records, messages and their wire form. No sockets, no asyncio."""
