"""The ground floor: coded errors, settings and request ids. Every layer imports it; it imports
none of them."""
