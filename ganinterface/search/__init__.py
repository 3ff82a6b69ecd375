"""Finding edits and measuring them: the recipe search, attribute directions and the edit report.

No hand labels: the generator is sampled and the attribute classifier reads every sample.

* ``samples``     generator samples, what the classifier reads in them, their feature maps;
* ``priors``      where the portrait renderer draws each feature (box, footprint);
* ``goals``       what each shipped recipe is for, and its aims;
* ``placement``   where an anchored mask lands on each portrait; the regions change is scored in;
* ``tuning``      a recipe rendered on all tuning samples in a few batched forwards, through the
                  edit kinds' own code (``engine.kinds``);
* ``trials``      one tried setting scored on the tuning samples, and how settings are ranked;
* ``recipes``     the recipe search itself;
* ``directions``  mean-difference attribute directions in W;
* ``shipped``     finding the built-in model's recipes and directions and writing them;
* ``metrics``     flip rate, locality, preservation, mask area, skin patch and seam on plain arrays;
* ``colour``      sRGB to CIELAB and the CIEDE2000 colour difference;
* ``artefacts``   the skin patch or seam an edit leaves, per skin tone or hair colour;
* ``evaluation``  the edit report: shipped recipes and directions scored on unseen seeds.

How each file was found is written into its JSON provenance.
"""
