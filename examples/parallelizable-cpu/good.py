"""Render a Mandelbrot set as ASCII art, the bands of rows in parallel processes.

The same program as bad.py with the independent bands handed to a process pool of
round(1.5 * os.cpu_count()) workers, so every core renders. advisor reports nothing.
"""

import multiprocessing
import os

WIDTH = 200
HEIGHT = 120
BANDS = 24
MAX_ITER = 2500
SHADES = " .:-=+*#%@"


def render_band(band: tuple[int, int]) -> list[str]:
    """The ASCII rows from row band[0] (inclusive) to band[1] (exclusive)."""
    rows = []
    for y in range(*band):
        imag = (y / HEIGHT) * 2.4 - 1.2
        row = []
        for x in range(WIDTH):
            c = complex((x / WIDTH) * 3.2 - 2.2, imag)
            z = 0j
            count = 0
            while count < MAX_ITER and abs(z) <= 2.0:
                z = z * z + c
                count += 1
            row.append(SHADES[count * (len(SHADES) - 1) // MAX_ITER])
        rows.append("".join(row))
    return rows


def main() -> None:
    step = HEIGHT // BANDS
    bands = [(start, start + step) for start in range(0, HEIGHT, step)]
    with multiprocessing.Pool(processes=round(1.5 * (os.cpu_count() or 1))) as pool:
        rendered = pool.map(render_band, bands)
    picture = [row for rows in rendered for row in rows]
    filled = sum(row.count("@") for row in picture)
    print(f"{len(picture)} rows x {WIDTH} columns, {filled} cells inside the set")


if __name__ == "__main__":
    main()
