"""nerfstudio dataparser registrations.

A leaf module on purpose: nerfstudio discovers dataparsers while its datamanager module is still being imported, so
this file may import only dataparser code (anything pulling in nerfstudio's trainer or pipelines here breaks every
``ns-*`` command with a circular import).
"""

from __future__ import annotations

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from tnerf_ns.data.multiscene_dataparser import TNeRFScenesDataParserConfig
from tnerf_ns.data.photos_dataparser import TNeRFPhotosDataParserConfig

tnerf_scenes_dataparser = DataParserSpecification(
    config=TNeRFScenesDataParserConfig(),
    description="Many rendered NeRF-MAE/synthetic scenes, normalised to one box, split by scene (T-NeRF)",
)

tnerf_photos_dataparser = DataParserSpecification(
    config=TNeRFPhotosDataParserConfig(),
    description="A folder of photos without poses: VGGT predicts cameras, points and a scene box (once, then reused)",
)
