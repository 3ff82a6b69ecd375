"""Texts of the Help menu (rich text)."""

QUICK_START = """<h3>Find and edit a feature in four steps</h3>
<ol>
<li><b>Pick a layer</b> in <i>Feature maps</i> (middle layers such as b32 hold parts like mouths
and hair bands). Every channel is one tile: green positive, red negative, white zero.</li>
<li><b>Mark the feature</b>: Region tool (M), drag a box over it on the image, then
<i>Rank channels by region</i>. Give a few seeds in <i>over seeds</i> to rank on many portraits.
<i>Select</i> takes the top channels.</li>
<li><b>Paint</b>: Brush (B) or Rectangle (R) on the image or on an opened channel. Left button adds,
right button subtracts; Size, Softness and Strength are in the toolbar. Hold <b>Space</b> to see the
image without edits.</li>
<li><b>Reuse</b>: <i>Save recipe…</i> stores the edits; <i>Apply recipe…</i> adds them to any seed
(a recipe is one row of the edit stack: untick it to compare, Strength scales it, <i>Keep the rest
of the picture</i> lets it change only its region),
<i>Apply to seeds…</i> renders a whole range; <i>Built-in recipes</i> open or close a mouth and add
or remove a hair band on the built-in model. Every change can be undone (Ctrl+Z).</li>
</ol>
<p><b>Your own picture</b>: File ▸ Open image… (Ctrl+Shift+I, or drop it on the image). Place the
frame on the part to use, press Enter to project it, then <i>Keep</i>: it becomes the scene, and
every step above works on it. To morph from one picture to another, keep each and press <i>Add
latent</i> in the <i>Directions, animation</i> tab after each.</p>
<p>Directions (latent sliders) and animations are in the <i>Directions, animation</i> tab;
File ▸ Export writes PNG (reopenable as a scene), strips, PNG sequences, GIF and MP4.</p>"""
SHORTCUTS = """<table>
<tr><td>V / B / R / M / F / G</td><td>Pan, Brush, Rectangle, Region, Resample, Fill tools</td></tr>
<tr><td>X</td><td>left button subtracts instead of adding</td></tr>
<tr><td>[ and ]</td><td>smaller / larger brush</td></tr>
<tr><td>Space (hold)</td><td>compare: the image without edits</td></tr>
<tr><td>Esc</td><td>clear the marked region</td></tr>
<tr><td>Delete</td><td>delete the selected edit (a recipe's edits together)</td></tr>
<tr><td>Page Up / Page Down</td><td>previous / next seed</td></tr>
<tr><td>Ctrl+Z / Ctrl+Shift+Z</td><td>undo / redo</td></tr>
<tr><td>Ctrl+0 / Ctrl+1</td><td>fit the image / actual pixels (1:1)</td></tr>
<tr><td>Middle drag, wheel</td><td>pan and zoom with any tool</td></tr>
<tr><td>Ctrl+O / Ctrl+S / Ctrl+E</td><td>open scene / save scene / export</td></tr>
<tr><td>Ctrl+Shift+O</td><td>open a model checkpoint</td></tr>
</table>"""
