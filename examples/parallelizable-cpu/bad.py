"""Render a Mandelbrot set as ASCII art, one band of rows at a time.

Each band of rows is computed from its own bounds only, but the bands are rendered
one after the other on one core; advisor reports parallelizable-cpu at the loop's call.
"""

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
    rendered = []
    for band in bands:
        rendered.append(render_band(band))  # expect: parallelizable-cpu
    picture = [row for rows in rendered for row in rows]
    filled = sum(row.count("@") for row in picture)
    print(f"{len(picture)} rows x {WIDTH} columns, {filled} cells inside the set")


if __name__ == "__main__":
    main()
